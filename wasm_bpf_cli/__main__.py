from wasm_bpf_cli.cli.main import main

if __name__ == "__main__":
    main()
