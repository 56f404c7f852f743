/* everyn [N]: keeps a struct test_sample whose seq is a multiple of N
 * (default 2), drops the others; an event of another size is dropped.
 * A kept sample comes back with its tag replaced by "kept-c". init refuses
 * N <= 0 with "N must be positive". */
#include <stdlib.h>
#include "wasm_bpf_processor.h"
#include "../sample.h"

static unsigned int every = 2;

int wasm_bpf_processor_init(int argc, const char *const *argv, const char **error)
{
	if (argc > 0) {
		int n = atoi(argv[0]);
		if (n <= 0) {
			*error = "N must be positive";
			return 1;
		}
		every = (unsigned int)n;
	}
	return 0;
}

int wasm_bpf_process(const uint8_t *event, size_t len, uint8_t **out, size_t *out_len)
{
	struct test_sample s;

	if (len != sizeof(s))
		return WASM_BPF_DROP;
	memcpy(&s, event, sizeof(s));
	if (s.seq % every)
		return WASM_BPF_DROP;
	memcpy(s.tag, "kept-c", 7);
	*out = malloc(sizeof(s));
	if (!*out)
		return WASM_BPF_DROP;
	memcpy(*out, &s, sizeof(s));
	*out_len = sizeof(s);
	return WASM_BPF_REPLACE;
}
