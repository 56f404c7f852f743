/* ringbuf: samples from a BPF_MAP_TYPE_RINGBUF. See README.md. */
#include "ringbuf.skel.h"
#define EV_OBJ ringbuf_bpf_obj
#define EV_OBJ_LEN ringbuf_bpf_obj_len
#define EV_MAP "rb"
#include "evguest.h"
