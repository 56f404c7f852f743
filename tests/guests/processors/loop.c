/* loop: never returns from process (a spinning processor). */
#include "wasm_bpf_processor.h"

int wasm_bpf_processor_init(int argc, const char *const *argv, const char **error)
{
	(void)argc, (void)argv, (void)error;
	return 0;
}

int wasm_bpf_process(const uint8_t *event, size_t len, uint8_t **out, size_t *out_len)
{
	volatile unsigned long n = 0;

	(void)event, (void)len, (void)out, (void)out_len;
	for (;;)
		n++;
}
