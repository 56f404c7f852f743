/* Structs with tricky layouts, shared by layouts.bpf.c (BPF) and the x86-64
 * reference program of tests/test_gen_types.py. */
enum color { RED, GREEN = 5, BLUE = -1 };
enum small { S0, S1 } __attribute__((packed));
struct inner { char tag; long v; };
struct tricky {
	char c;
	void *ptr;
	long l;
	unsigned int a : 3, b : 7;
	unsigned long long big : 40;
	union { int i; char bytes[6]; } u;
	struct { short s; char t; } named_anon;
	union { unsigned long ul; struct { int lo, hi; }; };
	int arr[3][2];
	enum color color;
	enum small sm;
	char name[13];
	struct inner in;
	struct inner ins[2];
	unsigned long *pp[2];
	unsigned char tail;
};
struct packed_s { char a; int b; long c; } __attribute__((packed));
typedef struct { int x; char y; } tdef_t;
struct bits { unsigned char f1 : 1; unsigned int f2 : 31; unsigned short f3 : 9; long f4 : 60; };
/* unnamed bitfields are not in BTF: the generator fills the gaps */
struct gaps { char c; unsigned int : 4; unsigned int z : 4; int : 0; char d;
	      unsigned short : 3; unsigned short w : 2; unsigned long long : 20;
	      unsigned long long q : 30; };
