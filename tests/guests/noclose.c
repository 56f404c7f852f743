/* noclose: attach, print "attached", return 3 without closing anything. */
#include "guest.h"
#include "noop.skel.h"

int main(void)
{
	load_attach(noop_bpf_obj, noop_bpf_obj_len);
	say("attached");
	return 3;
}
