/*
 * kvm-floor-shaped: the kernel's cost of starting a VM of hvcert's shape, with no VMM
 * around it. ../shared/tools/kvm-floor.c measures the smallest possible VM (no irqchip, no
 * PIT, no MSR filter) and never destroys one (it does not unmap the vCPU's kvm_run area, so
 * the vCPU and its VM stay alive until the process ends); this program makes and destroys
 * each VM the way hvcert's `Vm` does, in the same order, so that `vm_start_to_status_us`
 * from `cargo bench -p hypervisor --bench boot` has a like-for-like floor.
 *
 *   cc -O2 -o /tmp/kvm-floor-shaped tools/kvm-floor-shaped.c && /tmp/kvm-floor-shaped [runs] [pause_ms]
 *
 * Per VM: KVM_CREATE_VM, user-space MSR filter (KVM_CAP_X86_USER_SPACE_MSR +
 * KVM_X86_SET_MSR_FILTER over 0x40000000..0x400002ff), one 16 MiB memory slot, TSS address
 * + KVM_CREATE_IRQCHIP, KVM_CREATE_VCPU + KVM_SET_CPUID2 (the supported CPUID, fetched
 * once) + LAPIC LINT0/LINT1 + sregs/regs for 64-bit mode, KVM_CREATE_PIT2, then KVM_RUN
 * until the guest's `out 0xf4` (its first instruction). Then the VM is destroyed (vCPU
 * kvm_run unmapped, fds closed) and the next one starts after a pause (default 2 ms), as
 * the benchmark waits for hvcert's background teardown.
 * Prints the median total and the median of each phase, "name value unit"; then
 * pio_exit_us, kvm-floor's exit loop run in such a VM (in-kernel LAPIC, PIC and PIT
 * present, as in hvcert's VMs); then that exit interleaved in three ways: plain, with
 * registers copied to kvm_run on each exit (KVM_CAP_SYNC_REGS, regs + sregs, as hvcert
 * has it), and with registers also written back (as for a hypercall's result).
 */
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static void die(const char *what) { perror(what); exit(1); }

enum { P_CREATE, P_MSR, P_MEM, P_IRQCHIP, P_VCPU, P_PIT, P_RUN, P_TOTAL, NP };
static const char *names[NP] = {"create_vm", "msr_filter", "memory", "irqchip",
                                "vcpu", "pit", "first_run", "total"};

/* The start ends at the first `out 0xf4`. Then, for the exit figure, kvm-floor's own exit
 * loop (same instructions, registers and port): r13 times `out dx, al` to port 0x10, then
 * `out 0xf4` again. */
static const uint8_t guest[] = {
    0xb8, 0x00, 0x00, 0x00, 0x00, /* mov eax, 0       */
    0xe7, 0xf4,                   /* out 0xf4, eax    */
    0x66, 0xba, 0x10, 0x00,       /* mov dx, 0x10     */
    0x4d, 0x85, 0xed,             /* 1: test r13, r13 */
    0x74, 0x06,                   /* jz 2f            */
    0xee,                         /* out dx, al       */
    0x49, 0xff, 0xcd,             /* dec r13          */
    0xeb, 0xf5,                   /* jmp 1b           */
    0xe7, 0xf4,                   /* 2: out 0xf4, eax */
    0xf4,                         /* hlt              */
};

static struct kvm_cpuid2 *cpuid;

/* Exit modes for the interleaved measurement (see main). */
enum { M_PLAIN, M_SYNC, M_SYNC_WRITE, NM };
static const char *mode_names[NM] = {"plain", "sync_regs", "sync_regs_write"};
#define BATCH 2000

/* One VM: start-up phases into t[]; then, if exits > 0, the mean cost of one port exit (us)
 * into *exit_us; if modes is set, the exits alternate in batches of BATCH between the exit
 * modes, and modes[m] gets the mean cost in mode m. */
static void one(int kvm, double *t, uint64_t exits, double *exit_us, double *modes) {
  const size_t memsz = 16 << 20;
  double t0 = now(), a = t0;
#define MARK(p) do { double b = now(); t[p] = (b - a) * 1e6; a = b; } while (0)
  int vm = ioctl(kvm, KVM_CREATE_VM, 0);
  if (vm < 0) die("KVM_CREATE_VM");
  MARK(P_CREATE);
  struct kvm_enable_cap cap = {.cap = KVM_CAP_X86_USER_SPACE_MSR,
                               .args = {KVM_MSR_EXIT_REASON_FILTER}};
  if (ioctl(vm, KVM_ENABLE_CAP, &cap) < 0) die("KVM_ENABLE_CAP");
  static uint8_t bitmap[0x300 / 8];
  struct kvm_msr_filter f = {.flags = KVM_MSR_FILTER_DEFAULT_ALLOW};
  f.ranges[0] = (struct kvm_msr_filter_range){
      .flags = KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE, .nmsrs = 0x300,
      .base = 0x40000000, .bitmap = bitmap};
  if (ioctl(vm, KVM_X86_SET_MSR_FILTER, &f) < 0) die("KVM_X86_SET_MSR_FILTER");
  MARK(P_MSR);
  uint8_t *mem = mmap(0, memsz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED) die("mmap");
  struct kvm_userspace_memory_region r = {.slot = 0, .guest_phys_addr = 0,
      .memory_size = memsz, .userspace_addr = (uint64_t)mem};
  if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r) < 0) die("KVM_SET_USER_MEMORY_REGION");
  uint64_t *pml4 = (uint64_t *)(mem + 0x1000), *pdpt = (uint64_t *)(mem + 0x2000),
           *pd = (uint64_t *)(mem + 0x3000);
  pml4[0] = 0x2000 | 3; pdpt[0] = 0x3000 | 3; pd[0] = 0x83;
  uint64_t *gdt = (uint64_t *)(mem + 0x500);
  gdt[1] = 0x00af9b000000ffffull; gdt[2] = 0x00cf93000000ffffull;
  memcpy(mem + 0x10000, guest, sizeof guest);
  MARK(P_MEM);
  if (ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000) < 0) die("KVM_SET_TSS_ADDR");
  if (ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0) die("KVM_CREATE_IRQCHIP");
  double irqchip_at = now();
  MARK(P_IRQCHIP);
  int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
  if (vcpu < 0) die("KVM_CREATE_VCPU");
  if (ioctl(vcpu, KVM_SET_CPUID2, cpuid) < 0) die("KVM_SET_CPUID2");
  struct kvm_lapic_state l;
  if (ioctl(vcpu, KVM_GET_LAPIC, &l) < 0) die("KVM_GET_LAPIC");
  uint32_t *lint0 = (uint32_t *)(l.regs + 0x350), *lint1 = (uint32_t *)(l.regs + 0x360);
  *lint0 = (*lint0 & ~0x700u) | (7 << 8); *lint1 = (*lint1 & ~0x700u) | (4 << 8);
  if (ioctl(vcpu, KVM_SET_LAPIC, &l) < 0) die("KVM_SET_LAPIC");
  struct kvm_sregs s;
  if (ioctl(vcpu, KVM_GET_SREGS, &s) < 0) die("KVM_GET_SREGS");
  struct kvm_segment seg = {.base = 0, .limit = 0xffffffff, .selector = 8, .present = 1,
                            .type = 11, .s = 1, .l = 1, .g = 1};
  s.cs = seg;
  seg.type = 3; seg.selector = 16; seg.l = 0; seg.db = 1;
  s.ds = s.es = s.fs = s.gs = s.ss = seg;
  s.gdt.base = 0x500; s.gdt.limit = 23;
  s.cr3 = 0x1000; s.cr4 = 1 << 5; s.cr0 = 0x80050033; s.efer = 0x500;
  if (ioctl(vcpu, KVM_SET_SREGS, &s) < 0) die("KVM_SET_SREGS");
  struct kvm_regs g = {.rip = 0x10000, .rflags = 2, .rsp = 0x8000, .r13 = exits};
  if (ioctl(vcpu, KVM_SET_REGS, &g) < 0) die("KVM_SET_REGS");
  int sz = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
  struct kvm_run *run = mmap(0, sz, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
  if (run == MAP_FAILED) die("mmap kvm_run");
  MARK(P_VCPU);
  /* hvcert creates the PIT last, once the irqchip's SRCU grace period is 30 us old (an
   * expedited grace period right after another one is held off and takes ~15 ms here). */
  while (now() - irqchip_at < 30e-6) {
  }
  struct kvm_pit_config pc = {.flags = KVM_PIT_SPEAKER_DUMMY};
  if (ioctl(vm, KVM_CREATE_PIT2, &pc) < 0) die("KVM_CREATE_PIT2");
  MARK(P_PIT);
  for (;;) {
    if (ioctl(vcpu, KVM_RUN, 0) < 0) die("KVM_RUN");
    if (run->exit_reason == KVM_EXIT_IO && run->io.port == 0xf4) break;
    fprintf(stderr, "unexpected exit %u\n", run->exit_reason);
    exit(1);
  }
  MARK(P_RUN);
  t[P_TOTAL] = (now() - t0) * 1e6;
  if (exits) {
    uint64_t n = 0;
    double e0 = now(), sum[NM] = {0}, cnt[NM] = {0};
    int m = M_PLAIN;
    for (;;) {
      if (modes && n % BATCH == 0) {
        double t1 = now();
        if (n) {
          sum[m] += t1 - e0;
          cnt[m] += BATCH;
          m = (m + 1) % NM;
        }
        e0 = t1;
        /* KVM_CAP_SYNC_REGS as hvcert uses it: regs + sregs copied out on every exit. */
        run->kvm_valid_regs = m == M_PLAIN ? 0 : KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS;
      }
      if (ioctl(vcpu, KVM_RUN, 0) < 0) die("KVM_RUN");
      if (run->exit_reason != KVM_EXIT_IO) {
        fprintf(stderr, "unexpected exit %u\n", run->exit_reason);
        exit(1);
      }
      if (run->io.port == 0xf4) break;
      n++;
      if (modes && m == M_SYNC_WRITE) {
        /* ...and registers written back, as a hypercall's result is. */
        run->s.regs.regs.rax = n;
        run->kvm_dirty_regs = KVM_SYNC_X86_REGS;
      }
    }
    *exit_us = (now() - e0) * 1e6 / (double)(n ? n : 1);
    if (modes)
      for (int i = 0; i < NM; i++) modes[i] = cnt[i] ? sum[i] * 1e6 / cnt[i] : 0;
  }
  munmap(run, sz);
  close(vcpu);
  close(vm);
  munmap(mem, memsz);
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  int runs = argc > 1 ? atoi(argv[1]) : 21;
  int pause_ms = argc > 2 ? atoi(argv[2]) : 2;
  if (runs < 1) runs = 1;
  int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0) die("/dev/kvm");
  cpuid = calloc(1, sizeof *cpuid + 256 * sizeof(struct kvm_cpuid_entry2));
  cpuid->nent = 256;
  if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, cpuid) < 0) die("KVM_GET_SUPPORTED_CPUID");
  double *t = calloc((size_t)runs * NP, sizeof *t), warm[NP];
  double unused;
  for (int i = 0; i < 3; i++) one(kvm, warm, 0, &unused, 0); /* page cache, first VM */
  for (int i = 0; i < runs; i++) {
    usleep(pause_ms * 1000); /* the previous VM is gone, as in the benchmark */
    one(kvm, t + (size_t)i * NP, 0, &unused, 0);
  }
  for (int p = 0; p < NP; p++) {
    double *v = calloc(runs, sizeof *v);
    for (int i = 0; i < runs; i++) v[i] = t[(size_t)i * NP + p];
    qsort(v, runs, sizeof *v, cmp);
    printf("%s_us %.1f us\n", names[p], v[runs / 2]);
    free(v);
  }
  /* As kvm-floor's pio_exit_us: the median of 7 batches of ~20000/7 exits. */
  double e[7];
  for (int i = 0; i < 7; i++) one(kvm, warm, 20000 / 7 + 1, &e[i], 0);
  qsort(e, 7, sizeof e[0], cmp);
  printf("pio_exit_us %.2f us\n", e[3]);
  /* What KVM_CAP_SYNC_REGS costs per exit: the modes alternate every BATCH exits in one VM
   * (so the host's drifts hit them alike); median over 5 VMs. */
  double md[5][NM];
  for (int i = 0; i < 5; i++) one(kvm, warm, 30 * BATCH, &unused, md[i]);
  for (int m = 0; m < NM; m++) {
    double v[5];
    for (int i = 0; i < 5; i++) v[i] = md[i][m];
    qsort(v, 5, sizeof v[0], cmp);
    printf("pio_exit_%s_us %.2f us\n", mode_names[m], v[2]);
  }
  return 0;
}
