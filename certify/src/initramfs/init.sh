#!/bin/sh
# /init of the initramfs that hvcert builds for stock kernels (certify/src/initramfs.rs).
# POSIX sh for busybox ash. It prints KTAP on the console and powers the VM off.
#
# What it checks is chosen on the kernel command line, so one initramfs serves the
# virtio (`none`), `hyperv` and `xen` profiles:
#   hvcert.modules=a,b,c   modules to load, each with its dependencies (default: all in
#                          /etc/hvcert/modules, i.e. every module the initramfs was built with)
#   hvcert.hv=NAME         expected hypervisor: hyperv, xen, kvm, none (default: report only)
#   hvcert.cpus=N          expected vCPUs online (default: report only)
#   hvcert.clocksource=CS  expected clocksource (default: report only)
#   hvcert.disk=vda        block device to drive (sda, xvda; `none` skips the disk cases)
#   hvcert.sector=0        sector the pattern is written to
#   hvcert.pattern=WORD    pattern written there: "HVCERT WORD\n" padded with zeros to 512 bytes
#   hvcert.nic=eth0        network interface to drive (`none` skips the NIC cases)
#   hvcert.ip=10.0.2.15/24 address given to the NIC; hvcert.peer=10.0.2.2 is arpinged
#   hvcert.wait=10         seconds to wait for the disk and NIC to appear
# A module parameter on the command line (`virtio_mmio.device=...`) is passed to insmod,
# as modprobe would do.
set -f
export PATH=/bin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /tmp

CMDLINE=$(cat /proc/cmdline)

# param NAME DEFAULT: the value of hvcert.NAME= on the command line, else DEFAULT.
param() {
    for w in $CMDLINE; do
        case "$w" in
        "hvcert.$1="*) echo "${w#*=}"; return ;;
        esac
    done
    echo "$2"
}

# modparams MODULE: MODULE.key=value words of the command line, as key=value.
modparams() {
    out=
    for w in $CMDLINE; do
        case "$w" in
        "$1."*=*) out="$out ${w#"$1".}" ;;
        esac
    done
    echo "$out"
}

# oneline TEXT: TEXT on one line (a KTAP reason must not break the stream).
oneline() { echo "$*" | tr '\n' ' ' | sed 's/ *$//'; }

# lastlog: the kernel's last message, for the reason of a failed case.
lastlog() { dmesg 2>/dev/null | tail -n 1 | sed 's/^\[[^]]*\] *//'; }

# waitfor PATH: wait up to hvcert.wait seconds for PATH to exist.
waitfor() {
    i=0
    while [ ! -e "$1" ] && [ "$i" -lt "$WAIT" ]; do
        sleep 1
        i=$((i + 1))
    done
    [ -e "$1" ]
}

N=0
FAILED=0
ok() { N=$((N + 1)); echo "ok $N - $*"; }
notok() { N=$((N + 1)); FAILED=$((FAILED + 1)); echo "not ok $N - $1 # $(oneline "$2")"; }

WAIT=$(param wait 10)
DISK=$(param disk vda)
NIC=$(param nic eth0)

# The modules to load, each once, in load order: every dependency before its user.
WANT=$(param modules "")
[ -n "$WANT" ] || WANT=$(cut -d: -f1 /etc/hvcert/modules | tr '\n' ',')
LOAD=
MISSING=
BUILTIN=
for m in $(echo "$WANT" | tr ',' ' '); do
    line=$(grep "^$m:" /etc/hvcert/modules)
    if [ -z "$line" ]; then
        MISSING="$MISSING $m"
        continue
    fi
    [ -n "${line#*:}" ] || BUILTIN="$BUILTIN $m"
    for d in ${line#*:}; do
        case " $LOAD " in
        *" $d "*) ;;
        *) LOAD="$LOAD $d" ;;
        esac
    done
done

# The plan: 4 system cases, one per module (and per module built in or not in the initramfs),
# 2 disk cases, 3 NIC cases.
PLAN=4
for m in $LOAD $MISSING $BUILTIN; do PLAN=$((PLAN + 1)); done
[ "$DISK" = none ] || PLAN=$((PLAN + 2))
[ "$NIC" = none ] || PLAN=$((PLAN + 3))

echo "KTAP version 1"
echo "1..$PLAN"

# 1. User space runs.
ok "booted to user space"
echo "# kernel $(uname -r), uptime $(cut -d' ' -f1 /proc/uptime) s"

# 2. The hypervisor the kernel detected.
HV=$(dmesg 2>/dev/null | grep -m 1 'Hypervisor detected:' | sed 's/.*Hypervisor detected: *//')
[ -n "$HV" ] || HV=$(dmesg 2>/dev/null | grep -m 1 -o 'Xen HVM')
[ -n "$HV" ] || HV=none
case "$(param hv any)" in
any) ok "hypervisor detected: $HV" ;;
hyperv) case "$HV" in *Hyper-V*) ok "hypervisor detected: $HV" ;; *) notok "hypervisor detected: $HV" "expected Microsoft Hyper-V" ;; esac ;;
xen) case "$HV" in *Xen*) ok "hypervisor detected: $HV" ;; *) notok "hypervisor detected: $HV" "expected Xen" ;; esac ;;
kvm) case "$HV" in *KVM*) ok "hypervisor detected: $HV" ;; *) notok "hypervisor detected: $HV" "expected KVM" ;; esac ;;
none) if [ "$HV" = none ]; then ok "hypervisor detected: none"; else notok "hypervisor detected: $HV" "expected none"; fi ;;
*) notok "hypervisor detected: $HV" "unknown hvcert.hv=$(param hv any)" ;;
esac

# 3. vCPUs online: /sys/devices/system/cpu/online is a list of ranges ("0-3,5").
ONLINE=$(cat /sys/devices/system/cpu/online 2>/dev/null)
CPUS=0
for r in $(echo "$ONLINE" | tr ',' ' '); do
    case "$r" in
    *-*) CPUS=$((CPUS + ${r#*-} - ${r%-*} + 1)) ;;
    *) CPUS=$((CPUS + 1)) ;;
    esac
done
WANT_CPUS=$(param cpus "")
if [ -z "$WANT_CPUS" ] || [ "$WANT_CPUS" = "$CPUS" ]; then
    ok "vcpus online: $CPUS ($ONLINE)"
else
    notok "vcpus online: $CPUS ($ONLINE)" "expected $WANT_CPUS"
fi

# 4. The clocksource in use.
CS=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>/dev/null)
WANT_CS=$(param clocksource "")
if [ -z "$CS" ]; then
    notok "clocksource: none" "no /sys/devices/system/clocksource/clocksource0"
elif [ -z "$WANT_CS" ] || [ "$WANT_CS" = "$CS" ]; then
    ok "clocksource: $CS"
else
    notok "clocksource: $CS" "expected $WANT_CS"
fi

# Modules, in load order.
for m in $MISSING; do
    notok "insmod $m" "not in this initramfs (built with: $(oneline "$(cut -d: -f1 /etc/hvcert/modules)"))"
done
for m in $BUILTIN; do
    ok "module $m built into the kernel"
done
for m in $LOAD; do
    # The word-split of modparams is wanted: one insmod argument per parameter.
    # shellcheck disable=SC2046
    if err=$(insmod "/lib/modules/$m.ko" $(modparams "$m") 2>&1); then
        ok "insmod $m"
    else
        notok "insmod $m" "$err; kernel: $(lastlog)"
    fi
done

# The disk: seen by its driver, a pattern written, synced, read back.
if [ "$DISK" != none ]; then
    if waitfor "/sys/block/$DISK"; then
        DRV=$(basename "$(readlink "/sys/block/$DISK/device/driver")" 2>/dev/null)
        ok "disk $DISK seen by ${DRV:-no driver}, $(cat "/sys/block/$DISK/size") sectors"
        SECTOR=$(param sector 0)
        echo "HVCERT $(param pattern hvcert)" >/tmp/pattern
        if [ ! -b "/dev/$DISK" ]; then
            # dd would write a regular file and read it back: no proof of the disk.
            notok "disk $DISK pattern written and read back" "/dev/$DISK is not a block device (no devtmpfs?)"
        elif ! err=$(dd if=/tmp/pattern of="/dev/$DISK" bs=512 seek="$SECTOR" count=1 conv=sync,fsync 2>&1); then
            notok "disk $DISK pattern written and read back" "write: $err; kernel: $(lastlog)"
        else
            sync
            blockdev --flushbufs "/dev/$DISK" 2>/dev/null
            echo 3 >/proc/sys/vm/drop_caches
            dd if=/tmp/pattern of=/tmp/want bs=512 count=1 conv=sync 2>/dev/null
            if ! err=$(dd if="/dev/$DISK" of=/tmp/back bs=512 skip="$SECTOR" count=1 2>&1); then
                notok "disk $DISK pattern written and read back" "read: $err; kernel: $(lastlog)"
            elif cmp -s /tmp/want /tmp/back; then
                ok "disk $DISK pattern written and read back at sector $SECTOR"
            else
                notok "disk $DISK pattern written and read back" "read back differs: $(head -c 32 /tmp/back | od -An -c | tr -s ' ')"
            fi
        fi
    else
        notok "disk $DISK seen" "no /sys/block/$DISK after $WAIT s; kernel: $(lastlog)"
        notok "disk $DISK pattern written and read back" "no disk"
    fi
fi

# The NIC: up with its MTU, frames out and in.
if [ "$NIC" != none ]; then
    S=/sys/class/net/$NIC
    if waitfor "$S"; then
        DRV=$(basename "$(readlink "$S/device/driver")" 2>/dev/null)
        if err=$(ip link set "$NIC" up 2>&1); then
            ok "nic $NIC up, driver ${DRV:-none}, mtu $(cat "$S/mtu")"
        else
            notok "nic $NIC up, driver ${DRV:-none}, mtu $(cat "$S/mtu")" "$err; kernel: $(lastlog)"
        fi
        TX0=$(cat "$S/statistics/tx_packets")
        RX0=$(cat "$S/statistics/rx_packets")
        ip addr add "$(param ip 10.0.2.15/24)" dev "$NIC" 2>/dev/null
        arping -c 3 -w 3 -I "$NIC" "$(param peer 10.0.2.2)" >/dev/null 2>&1
        TX=$(($(cat "$S/statistics/tx_packets") - TX0))
        RX=$(($(cat "$S/statistics/rx_packets") - RX0))
        if [ "$TX" -gt 0 ]; then ok "nic $NIC frames out: $TX"; else notok "nic $NIC frames out: 0" "tx_packets did not move; kernel: $(lastlog)"; fi
        if [ "$RX" -gt 0 ]; then ok "nic $NIC frames in: $RX"; else notok "nic $NIC frames in: 0" "rx_packets did not move"; fi
    else
        notok "nic $NIC up" "no $S after $WAIT s; kernel: $(lastlog)"
        notok "nic $NIC frames out" "no nic"
        notok "nic $NIC frames in" "no nic"
    fi
fi

# The status: the number of failed cases; the host reads this line, then the VM powers off.
echo "# hvcert status $FAILED ($N cases, $FAILED failed)"
sync
poweroff -f
# poweroff returned: the kernel could not power off (no ACPI?). Say so; halt as a last resort.
echo "# hvcert: poweroff failed, halting"
halt -f
while :; do sleep 60; done
