/* vm_xml.c — see vm_xml.h. Every device of a microvm machine carries a virtio-mmio
 * address: libvirt would otherwise try to place it on a PCI bus the machine lacks. */
#include "vm/vm_xml.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <libxml/xmlwriter.h>

struct w {
        xmlTextWriterPtr x;
        bool failed;
};

static void open_el(struct w *w, const char *name)
{
        if (xmlTextWriterStartElement(w->x, (const xmlChar *)name) < 0)
                w->failed = true;
}

static void close_el(struct w *w)
{
        if (xmlTextWriterEndElement(w->x) < 0)
                w->failed = true;
}

/* The writer escapes markup but passes bytes through: text that is not UTF-8, or holds
 * a control character XML 1.0 cannot carry, would make a document libvirt refuses (or
 * reads differently). Such text fails the whole document instead. */
static bool xml_text_ok(const char *value)
{
        for (const unsigned char *p = (const unsigned char *)value; *p; p++)
                if (*p < 0x20 && *p != '\t' && *p != '\n' && *p != '\r')
                        return false;
        return xmlCheckUTF8((const unsigned char *)value) != 0;
}

static void attr(struct w *w, const char *name, const char *value)
{
        if (!xml_text_ok(value))
                w->failed = true;
        else if (xmlTextWriterWriteAttribute(w->x, (const xmlChar *)name, (const xmlChar *)value) <
                 0)
                w->failed = true;
}

static void text(struct w *w, const char *value)
{
        if (!xml_text_ok(value))
                w->failed = true;
        else if (xmlTextWriterWriteString(w->x, (const xmlChar *)value) < 0)
                w->failed = true;
}

/* <name>value</name> */
static void leaf(struct w *w, const char *name, const char *value)
{
        open_el(w, name);
        text(w, value);
        close_el(w);
}

static void leaf_u64(struct w *w, const char *name, uint64_t value)
{
        char buf[24];
        snprintf(buf, sizeof(buf), "%" PRIu64, value);
        leaf(w, name, buf);
}

/* An empty element with attributes given as name, value pairs ending in END (a typed
 * NULL: a bare NULL may be a plain 0 in a variadic call). */
#define END ((const char *)NULL)
static void empty(struct w *w, const char *name, ...)
{
        va_list ap;
        va_start(ap, name);
        open_el(w, name);
        for (const char *k; (k = va_arg(ap, const char *));)
                attr(w, k, va_arg(ap, const char *));
        close_el(w);
        va_end(ap);
}

static void mmio(struct w *w, const struct vm_domain_spec *s)
{
        if (s->microvm)
                empty(w, "address", "type", "virtio-mmio", END);
}

static void write_os(struct w *w, const struct vm_domain_spec *s)
{
        open_el(w, "os");
        open_el(w, "type");
        attr(w, "arch", "x86_64");
        attr(w, "machine", s->microvm ? "microvm" : "q35");
        text(w, "hvm");
        close_el(w);
        if (!s->microvm && s->qboot_rom) {
                open_el(w, "loader");
                attr(w, "type", "rom");
                text(w, s->qboot_rom);
                close_el(w);
        }
        leaf(w, "kernel", s->kernel);
        if (s->initrd)
                leaf(w, "initrd", s->initrd);
        leaf(w, "cmdline", s->cmdline);
        close_el(w);
}

/* cpu.max limits the whole VM, whatever its vcpus do: the global period/quota apply to
 * the domain's cgroup, which holds the vcpu and the emulator threads. The emulator's
 * own, tighter quota is set after the start (vm.c): set here, it slows the boot down by
 * seconds. */
static void write_cputune(struct w *w, const struct vm_domain_spec *s)
{
        open_el(w, "cputune");
        /* cgroup v1 shares: 1024 is the default weight 100. */
        leaf_u64(w, "shares", (uint64_t)s->cpu_weight * 1024 / 100);
        if (s->cpu_millicpus) {
                leaf_u64(w, "global_period", VM_CPU_PERIOD_US);
                leaf_u64(w, "global_quota", (uint64_t)s->cpu_millicpus * VM_CPU_PERIOD_US / 1000);
        }
        close_el(w);
}

/* KVM: the host's CPU as it is. TCG: QEMU's default model (qemu64) plus the ARAT bit
 * ("APIC timer always running"; TCG emulates it, a CPUID bit with no security meaning).
 * Without it the guest kernel marks the lapic timer as stopping in deep C-states
 * (C3STOP) and, with no HPET on a microvm to broadcast from, never leaves the periodic
 * tick: an idle guest takes 250 timer interrupts a second and its QEMU ~6% of a core.
 * With it the guest goes tickless (~9 a second, ~1.3%; bench/RESULTS.md). */
static void write_cpu(struct w *w, const struct vm_domain_spec *s)
{
        if (s->kvm) {
                empty(w, "cpu", "mode", "host-passthrough", END);
                return;
        }
        open_el(w, "cpu");
        leaf(w, "model", "qemu64");
        empty(w, "feature", "policy", "require", "name", "arat", END);
        close_el(w);
}

/* Before it lets the guest run, libvirt 9.0 reads the started vCPU's features back over
 * QMP (qemuProcessUpdateAndVerifyCPU, for every domain, whatever its <cpu> says). When
 * QEMU's x86 CPU has an "unavailable-features" property (libvirt's capability
 * cpu-unavailable-features; QEMU 7.2 has it) it lists the vCPU's properties and reads
 * each with its own qom-get: ~400 round trips, ~0.65 s of a TCG start on this loaded
 * machine. Without that capability libvirt takes its older x86 path: two qom-gets, the
 * vCPU's CPUID words ("feature-words") and what QEMU filtered out ("filtered-features").
 * The live CPU definition libvirt derives is the same either way (qemu64, arat,
 * hypervisor, lahf_lm, check='full'; bench/RESULTS.md). <qemu:capabilities> masks a
 * capability for one domain; libvirt marks it "tainted: custom-hypervisor-feature" and
 * nothing else. libvirt 9.0's only other use of the capability refuses MSR-based CPU
 * features, which this domain has none of. TCG only: a KVM start is untested here. */
static void write_qemu_caps(struct w *w, const struct vm_domain_spec *s)
{
        if (s->kvm)
                return;
        open_el(w, "qemu:capabilities");
        empty(w, "qemu:del", "capability", "cpu-unavailable-features", END);
        close_el(w);
}

static void write_share(struct w *w, const struct vm_domain_spec *s, const struct vm_share *sh)
{
        open_el(w, "filesystem");
        attr(w, "type", "mount");
        attr(w, "accessmode", "passthrough");
        if (sh->fs == VM_FS_VIRTIOFS) {
                empty(w, "driver", "type", "virtiofs", "queue", "1024", END);
                /* Not virtiofsd itself: tenantd's wrapper, which serves the share from a
                 * nosuid,nodev mount of its own under a seccomp filter that keeps
                 * setuid bits and device nodes off the host's disk (virtiofsd_wrap.c). */
                if (s->virtiofsd)
                        empty(w, "binary", "path", s->virtiofsd, END);
        } else
                empty(w, "driver", "type", "path", "wrpolicy", "immediate", END);
        empty(w, "source", "dir", sh->source, END);
        empty(w, "target", "dir", sh->tag, END);
        if (sh->readonly)
                empty(w, "readonly", END);
        mmio(w, s);
        close_el(w);
}

static void write_devices(struct w *w, const struct vm_domain_spec *s)
{
        open_el(w, "devices");
        /* The serial console goes to a log file through virtlogd, which rotates it at
         * its max_size (2 MiB by default) keeping max_backups (3) old files: a guest that
         * floods its console fills at most ~8 MiB of host disk. A "file" serial would be
         * opened by libvirt itself and grow without bound. */
        open_el(w, "serial");
        attr(w, "type", "pty");
        empty(w, "log", "file", s->console_log, "append", "off", END);
        empty(w, "target", "port", "0", END);
        close_el(w);

        open_el(w, "controller");
        attr(w, "type", "virtio-serial");
        attr(w, "index", "0");
        attr(w, "ports", "2");
        mmio(w, s);
        close_el(w);
        open_el(w, "channel");
        attr(w, "type", "unix");
        empty(w, "source", "mode", "bind", "path", s->agent_socket, END);
        empty(w, "target", "type", "virtio", "name", VM_AGENT_PORT_NAME, END);
        empty(w, "address", "type", "virtio-serial", "controller", "0", "bus", "0", "port", "1",
              END);
        close_el(w);

        for (size_t i = 0; i < s->n_shares; i++)
                write_share(w, s, &s->shares[i]);

        if (s->tap) {
                char mac[18];
                snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", s->mac[0], s->mac[1],
                         s->mac[2], s->mac[3], s->mac[4], s->mac[5]);
                open_el(w, "interface");
                attr(w, "type", "ethernet");
                empty(w, "mac", "address", mac, END);
                /* managed='no': the tap exists (net.c made it, on the bridge, shaped and
                 * firewalled); libvirt only opens it. */
                empty(w, "target", "dev", s->tap, "managed", "no", END);
                empty(w, "model", "type", "virtio", END);
                mmio(w, s);
                close_el(w);
        }

        /* Entropy for the guest's early boot, rate-limited to 64 KiB/s. */
        open_el(w, "rng");
        attr(w, "model", "virtio");
        empty(w, "rate", "bytes", "65536", "period", "1000", END);
        open_el(w, "backend");
        attr(w, "model", "random");
        text(w, "/dev/urandom");
        close_el(w);
        mmio(w, s);
        close_el(w);

        /* A balloon that never inflates (the guest's memory is what the manifest says),
         * only for free page reporting: the guest tells QEMU which of its pages are
         * free (in 2 MiB blocks, after they stayed free a while), and QEMU gives them
         * back to the host (a hole punched in the memfd). What a guest touched while it
         * booted and freed since stops counting on the host. */
        open_el(w, "memballoon");
        attr(w, "model", "virtio");
        attr(w, "freePageReporting", "on");
        mmio(w, s);
        close_el(w);
        /* Nothing else: no USB, no graphics, no default devices. */
        empty(w, "controller", "type", "usb", "model", "none", END);
        close_el(w);
}

static void write_domain(struct w *w, const struct vm_domain_spec *s)
{
        bool virtiofs = false;
        for (size_t i = 0; i < s->n_shares; i++)
                virtiofs |= s->shares[i].fs == VM_FS_VIRTIOFS;

        open_el(w, "domain");
        attr(w, "type", s->kvm ? "kvm" : "qemu");
        if (s->microvm || !s->kvm)
                attr(w, "xmlns:qemu", "http://libvirt.org/schemas/domain/qemu/1.0");
        leaf(w, "name", s->domain_name);
        open_el(w, "memory");
        attr(w, "unit", "KiB");
        char kib[24];
        snprintf(kib, sizeof(kib), "%" PRIu64, s->memory / 1024);
        text(w, kib);
        close_el(w);
        /* virtiofsd maps the guest's memory: it must be shared, and memfd needs no
         * hugepages or files of its own. */
        if (virtiofs) {
                open_el(w, "memoryBacking");
                empty(w, "source", "type", "memfd", END);
                empty(w, "access", "mode", "shared", END);
                close_el(w);
        }
        leaf_u64(w, "vcpu", s->vcpus);
        write_cputune(w, s);
        write_os(w, s);
        /* The guest finds its virtio-mmio devices in the ACPI tables QEMU writes: Debian's
         * kernel cannot take them from the command line (no VIRTIO_MMIO_CMDLINE_DEVICES),
         * and without <acpi/> libvirt passes -no-acpi. */
        open_el(w, "features");
        empty(w, "acpi", END);
        /* TCG's translation cache is QEMU's own memory, counted in memory.max; QEMU 7.2
         * sizes it up to 1 GiB. 32 MiB holds one guest kernel and its services: an idle
         * guest keeps 15 MiB less than with 64, for a boot ~5% slower (more flushes). */
        if (!s->kvm) {
                open_el(w, "tcg");
                open_el(w, "tb-cache");
                attr(w, "unit", "MiB");
                text(w, "32");
                close_el(w);
                close_el(w);
        }
        close_el(w);
        write_cpu(w, s);
        empty(w, "clock", "offset", "utc", END);
        /* A guest that powers off, reboots or panics (panic=-1 reboots at once) is gone;
         * tenantd decides about restarts. */
        leaf(w, "on_poweroff", "destroy");
        leaf(w, "on_reboot", "destroy");
        leaf(w, "on_crash", "destroy");
        write_devices(w, s);
        /* What libvirt has no element for, passed to QEMU as is (libvirt marks such a
         * domain "tainted: custom-argv", and that is all):
         * - virtio-mmio devices are legacy (virtio 0.9) unless told otherwise, and
         *   virtiofsd (libvhost-user) refuses legacy devices: it exits, and the guest's
         *   first access to the share hangs.
         * - Under TCG a microvm has no PIT and no PIC unless asked ("auto" means KVM's
         *   in-kernel ones); a second -machine option is merged into the first. */
        if (s->microvm) {
                open_el(w, "qemu:commandline");
                empty(w, "qemu:arg", "value", "-global", END);
                empty(w, "qemu:arg", "value", "virtio-mmio.force-legacy=false", END);
                if (!s->kvm) {
                        empty(w, "qemu:arg", "value", "-machine", END);
                        empty(w, "qemu:arg", "value", "pit=on,pic=on,rtc=on", END);
                }
                close_el(w);
        }
        write_qemu_caps(w, s);
        close_el(w);
}

int vm_domain_xml(const struct vm_domain_spec *spec, char **ret, struct tn_err **err)
{
        if (!spec->domain_name || !spec->kernel || !spec->cmdline || !spec->console_log ||
            !spec->agent_socket || spec->vcpus == 0 || spec->memory < 1024 * 1024 ||
            (spec->tap && !spec->mac))
                return tn_err_setx(err, EINVAL, "incomplete domain description");
        for (size_t i = 0; i < spec->n_shares; i++)
                if (spec->shares[i].fs == VM_FS_VIRTIOFS && !spec->virtiofsd)
                        return tn_err_setx(err, EINVAL,
                                           "a read-write share needs tenantd-virtiofsd");
        xmlBufferPtr buf = xmlBufferCreate();
        if (!buf)
                return tn_err_setx(err, ENOMEM, "out of memory");
        struct w w = {.x = xmlNewTextWriterMemory(buf, 0)};
        if (!w.x) {
                xmlBufferFree(buf);
                return tn_err_setx(err, ENOMEM, "out of memory");
        }
        xmlTextWriterSetIndent(w.x, 1);
        xmlTextWriterSetIndentString(w.x, (const xmlChar *)"  ");
        write_domain(&w, spec);
        if (xmlTextWriterEndDocument(w.x) < 0)
                w.failed = true;
        xmlFreeTextWriter(w.x); /* flushes into buf */
        char *doc = NULL;
        if (!w.failed)
                doc = strdup((const char *)xmlBufferContent(buf));
        xmlBufferFree(buf);
        if (w.failed)
                return tn_err_setx(err, EINVAL,
                                   "cannot write the domain XML: a path or the command line is not "
                                   "UTF-8 or holds control characters");
        if (!doc)
                return tn_err_setx(err, ENOMEM, "out of memory");
        *ret = doc;
        return 0;
}
