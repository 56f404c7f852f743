/* spin: attach, print "attached", then loop forever without polling. */
#include "guest.h"
#include "noop.skel.h"

int main(void)
{
	static volatile unsigned long long counter;

	load_attach(noop_bpf_obj, noop_bpf_obj_len);
	say("attached");
	for (;;)
		counter++;
	return 0;
}
