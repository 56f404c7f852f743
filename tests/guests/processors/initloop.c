/* initloop: never returns from init. */
#include "wasm_bpf_processor.h"

int wasm_bpf_processor_init(int argc, const char *const *argv, const char **error)
{
	volatile unsigned long n = 0;

	(void)argc, (void)argv, (void)error;
	for (;;)
		n++;
}

int wasm_bpf_process(const uint8_t *event, size_t len, uint8_t **out, size_t *out_len)
{
	(void)event, (void)len, (void)out, (void)out_len;
	return WASM_BPF_KEEP;
}
