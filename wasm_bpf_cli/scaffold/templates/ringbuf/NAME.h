/* The event @NAME@.bpf.c sends and @NAME@.c prints. Only fixed-size
 * types: the layout is the same on the BPF side (64-bit) and in wasm32. */
#ifndef @NAME_UPPER@_H
#define @NAME_UPPER@_H

#define TASK_COMM_LEN 16
#define FILENAME_LEN 128

struct event {
	unsigned int pid;
	char comm[TASK_COMM_LEN];
	char filename[FILENAME_LEN];
};

#endif
