/* perf: samples from a BPF_MAP_TYPE_PERF_EVENT_ARRAY. See README.md. */
#include "perf.skel.h"
#define EV_OBJ perf_bpf_obj
#define EV_OBJ_LEN perf_bpf_obj_len
#define EV_MAP "events"
#include "evguest.h"
