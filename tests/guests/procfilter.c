/* procfilter PID N: ringbuf's samples as `--filter rb=NAME` lets them through:
 * "sample seq=S tag=T size=Z" each (see README.md). */
#include "ringbuf.skel.h"
#define EV_OBJ ringbuf_bpf_obj
#define EV_OBJ_LEN ringbuf_bpf_obj_len
#define EV_MAP "rb"
#define EV_SHOW_SEQ
#include "evguest.h"
