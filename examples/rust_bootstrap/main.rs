// SPDX-License-Identifier: MIT
//! rust_bootstrap: the bootstrap example (process exec/exit events through a
//! ring buffer) as a Rust wasm-bpf guest, std only.
//! Usage: rust_bootstrap [-d MIN_MS] [-v] [-h]
//!
//! Build: /usr/bin/rustc --target wasm32-wasi -O -C link-arg=--export-table main.rs
//! (`--export-table` exports `__indirect_function_table`, through which the
//! host calls `handle_event`).

use std::io::Write;
use std::os::raw::c_char;
use std::time::{SystemTime, UNIX_EPOCH};

/// The stripped object built by ../bootstrap (copied into a Vec to patch it).
static BPF_OBJ: &[u8] = include_bytes!("../bootstrap/bootstrap.bpf.o");

#[link(wasm_import_module = "wasm_bpf")]
extern "C" {
    fn wasm_load_bpf_object(obj_buf: *const u8, obj_buf_sz: i32) -> u64;
    fn wasm_attach_bpf_program(obj: u64, name: *const c_char, attach_target: *const c_char) -> i32;
    fn wasm_bpf_buffer_poll(
        obj: u64,
        fd: i32,
        sample_func: i32,
        ctx: i32,
        data: *mut u8,
        max_size: i32,
        timeout_ms: i32,
    ) -> i32;
    fn wasm_bpf_map_fd_by_name(obj: u64, name: *const c_char) -> i32;
    fn wasm_close_bpf_object(obj: u64) -> i32;
}

/// Host errors are negative WASI errno values (Rust's libc for wasm32-wasi).
const EINTR: i32 = 27;
const ENOENT: i32 = 44;
const EINVAL: i32 = 28;

const TASK_COMM_LEN: usize = 16;
const MAX_FILENAME_LEN: usize = 127;

/// Same layout as `struct event` in ../bootstrap/bootstrap.h (168 bytes).
#[repr(C)]
#[derive(Clone, Copy)]
struct Event {
    pid: i32,
    ppid: i32,
    exit_code: u32,
    _pad: u32,
    duration_ns: u64,
    comm: [u8; TASK_COMM_LEN],
    filename: [u8; MAX_FILENAME_LEN],
    exit_event: u8,
}

const _: () = assert!(std::mem::size_of::<Event>() == 168);

fn cstr(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&c| c == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// HH:MM:SS of the current UTC time (what localtime() gives under WASI).
fn hms() -> String {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => {
            let s = d.as_secs() % 86400;
            format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
        }
        Err(_) => "??:??:??".to_string(),
    }
}

/// Sample callback, called by the host through the exported function table.
extern "C" fn handle_event(_ctx: i32, data: *const u8, size: i32) -> i32 {
    if data.is_null() || (size as usize) < std::mem::size_of::<Event>() {
        eprintln!("short event: {} bytes", size);
        return 0;
    }
    let e: Event = unsafe { std::ptr::read_unaligned(data as *const Event) };
    let comm = cstr(&e.comm);
    let out = std::io::stdout();
    let mut out = out.lock();
    let _ = if e.exit_event != 0 {
        let mut line = format!(
            "{:<8} {:<5} {:<16} {:<7} {:<7} [{}]",
            hms(), "EXIT", comm, e.pid, e.ppid, e.exit_code
        );
        if e.duration_ns != 0 {
            line.push_str(&format!(" ({}ms)", e.duration_ns / 1_000_000));
        }
        writeln!(out, "{}", line)
    } else {
        writeln!(
            out,
            "{:<8} {:<5} {:<16} {:<7} {:<7} {}",
            hms(), "EXEC", comm, e.pid, e.ppid, cstr(&e.filename)
        )
    };
    let _ = out.flush();
    0
}

fn rd(e: &[u8], off: usize, n: usize) -> Option<u64> {
    let b = e.get(off..off.checked_add(n)?)?;
    Some(b.iter().rev().fold(0u64, |v, &x| (v << 8) | x as u64))
}

/// Patch `value` into the global `symbol` of section `section` of the ELF64
/// little-endian object `elf` (like the C SDK's wasm_bpf_set_global()).
/// Errors: -EINVAL (malformed, too small), -ENOENT (no such section/symbol).
fn set_global(elf: &mut [u8], section: &str, symbol: &str, value: &[u8]) -> Result<(), i32> {
    let bad = -EINVAL;
    if elf.len() < 64 || &elf[0..4] != b"\x7fELF" || elf[4] != 2 || elf[5] != 1 {
        return Err(bad);
    }
    let shoff = rd(elf, 0x28, 8).ok_or(bad)? as usize;
    let shentsize = rd(elf, 0x3a, 2).ok_or(bad)? as usize;
    let shnum = rd(elf, 0x3c, 2).ok_or(bad)? as usize;
    let shstrndx = rd(elf, 0x3e, 2).ok_or(bad)? as usize;
    if shentsize < 64 || shstrndx >= shnum {
        return Err(bad);
    }
    let sh = |i: usize| shoff + i * shentsize;
    let field = |i: usize, off: usize, n: usize| rd(elf, sh(i) + off, n).ok_or(bad);
    let name_at = |tab: usize, off: u64| -> Result<Vec<u8>, i32> {
        let start = rd(elf, sh(tab) + 0x18, 8).ok_or(bad)? as usize + off as usize;
        let rest = elf.get(start..).ok_or(bad)?;
        let end = rest.iter().position(|&c| c == 0).ok_or(bad)?;
        Ok(rest[..end].to_vec())
    };
    let mut sec_idx = 0;
    let mut sym_idx = 0;
    for i in 1..shnum {
        if sec_idx == 0 && name_at(shstrndx, field(i, 0, 4)?)? == section.as_bytes() {
            sec_idx = i;
        }
        if sym_idx == 0 && field(i, 4, 4)? == 2 {
            sym_idx = i; // SHT_SYMTAB
        }
    }
    if sec_idx == 0 || sym_idx == 0 {
        return Err(-ENOENT);
    }
    if field(sec_idx, 4, 4)? == 8 {
        return Err(bad); // SHT_NOBITS: no bytes in the file
    }
    let t_off = field(sec_idx, 0x18, 8)? as usize;
    let t_size = field(sec_idx, 0x20, 8)? as usize;
    let s_off = field(sym_idx, 0x18, 8)? as usize;
    let s_size = field(sym_idx, 0x20, 8)? as usize;
    let s_link = field(sym_idx, 0x28, 4)? as usize;
    let s_ent = field(sym_idx, 0x38, 8)? as usize;
    if s_ent < 24 || s_link == 0 || s_link >= shnum {
        return Err(bad);
    }
    let mut j = 0;
    while j + s_ent <= s_size {
        let sym = s_off + j;
        j += s_ent;
        if rd(elf, sym + 6, 2).ok_or(bad)? as usize != sec_idx
            || name_at(s_link, rd(elf, sym, 4).ok_or(bad)?)? != symbol.as_bytes()
        {
            continue;
        }
        let st_value = rd(elf, sym + 8, 8).ok_or(bad)? as usize;
        let st_size = rd(elf, sym + 16, 8).ok_or(bad)? as usize;
        if (st_size != 0 && value.len() > st_size) || st_value + value.len() > t_size {
            return Err(bad);
        }
        let dst = elf.get_mut(t_off + st_value..t_off + st_value + value.len()).ok_or(bad)?;
        dst.copy_from_slice(value);
        return Ok(());
    }
    Err(-ENOENT)
}

fn usage(prog: &str) -> String {
    format!(
        "BPF bootstrap demo application (Rust guest).\n\
         \n\
         It traces process start and exits and shows associated\n\
         information (filename, process duration, PID and PPID, etc).\n\
         \n\
         USAGE: {} [-d <min-duration-ms>] [-v] [-h]\n  \
         -d MIN_MS  only report exits of processes that lived at least\n             \
         MIN_MS milliseconds (exec events are then hidden)\n  \
         -v         verbose debug output (to stderr)\n  \
         -h         show this help\n",
        prog
    )
}

fn run() -> i32 {
    let args: Vec<String> = std::env::args().collect();
    let prog = args.get(0).cloned().unwrap_or_else(|| "rust_bootstrap".to_string());
    let mut min_duration_ns: u64 = 0;
    let mut verbose = false;
    let mut i = 1;
    while i < args.len() {
        match args[i].as_str() {
            "-d" => {
                let ms = args.get(i + 1).and_then(|s| s.parse::<u64>().ok()).filter(|&ms| ms > 0);
                match ms {
                    Some(ms) => min_duration_ns = ms * 1_000_000,
                    None => {
                        eprintln!("Invalid duration: {}", args.get(i + 1).map(|s| s.as_str()).unwrap_or(""));
                        eprint!("{}", usage(&prog));
                        return 1;
                    }
                }
                i += 1;
            }
            "-v" => verbose = true,
            "-h" => {
                print!("{}", usage(&prog));
                return 0;
            }
            _ => {
                eprint!("{}", usage(&prog));
                return 1;
            }
        }
        i += 1;
    }

    let mut obj_buf = BPF_OBJ.to_vec();
    if let Err(err) = set_global(&mut obj_buf, ".rodata", "min_duration_ns", &min_duration_ns.to_le_bytes()) {
        eprintln!("Failed to set min_duration_ns: {}", err);
        return 1;
    }
    if verbose {
        eprintln!("bpf object: {} bytes, min_duration_ns={}", obj_buf.len(), min_duration_ns);
    }
    let obj = unsafe { wasm_load_bpf_object(obj_buf.as_ptr(), obj_buf.len() as i32) };
    if obj == 0 {
        eprintln!("Failed to open and load BPF object");
        return 1;
    }
    let code = trace(obj, verbose);
    unsafe { wasm_close_bpf_object(obj) };
    code
}

fn trace(obj: u64, verbose: bool) -> i32 {
    for name in ["handle_exec\0", "handle_exit\0"] {
        let err = unsafe { wasm_attach_bpf_program(obj, name.as_ptr() as *const c_char, std::ptr::null()) };
        if err < 0 {
            eprintln!("Failed to attach {}: {}", name.trim_end_matches('\0'), err);
            return 1;
        }
    }
    if verbose {
        eprintln!("attached handle_exec, handle_exit");
    }
    let fd = unsafe { wasm_bpf_map_fd_by_name(obj, "rb\0".as_ptr() as *const c_char) };
    if fd < 0 {
        eprintln!("Failed to create ring buffer: {}", fd);
        return 1;
    }
    let mut data = vec![0u8; 256 * 1024];
    // the callback's index in __indirect_function_table
    let callback = handle_event as extern "C" fn(i32, *const u8, i32) -> i32 as usize as i32;

    println!("{:<8} {:<5} {:<16} {:<7} {:<7} {}", "TIME", "EVENT", "COMM", "PID", "PPID", "FILENAME/EXIT CODE");
    let _ = std::io::stdout().flush();
    loop {
        let err = unsafe {
            wasm_bpf_buffer_poll(obj, fd, callback, 0, data.as_mut_ptr(), data.len() as i32, 100)
        };
        if err == -EINTR {
            if verbose {
                eprintln!("interrupted, exiting");
            }
            return 0;
        }
        if err < 0 {
            eprintln!("Error polling ring buffer: {}", err);
            return 1;
        }
    }
}

fn main() {
    let code = run();
    let _ = std::io::stdout().flush();
    std::process::exit(code);
}
