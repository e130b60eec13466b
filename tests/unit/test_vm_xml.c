/* test_vm_xml.c — the microVM domain XML: read back with libxml2's parser and XPath,
 * so the checks are about the document libvirt will see, not about its text. */
#include <string.h>

#include <libxml/parser.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>

#include "tap.h"
#include "vm/vm_xml.h"

static xmlDocPtr doc;
static xmlXPathContextPtr xp;

static bool load(const struct vm_domain_spec *spec)
{
        if (xp)
                xmlXPathFreeContext(xp);
        if (doc)
                xmlFreeDoc(doc);
        xp = NULL;
        doc = NULL;
        _cleanup_err_ struct tn_err *err = NULL;
        _cleanup_free_ char *xml = NULL;
        if (vm_domain_xml(spec, &xml, &err) < 0) {
                diag("vm_domain_xml: %s", tn_err_msg(err));
                return false;
        }
        doc = xmlReadMemory(xml, (int)strlen(xml), "domain.xml", NULL,
                            XML_PARSE_NONET | XML_PARSE_NOBLANKS);
        if (!doc)
                return false;
        xp = xmlXPathNewContext(doc);
        xmlXPathRegisterNs(xp, (const xmlChar *)"qemu",
                           (const xmlChar *)"http://libvirt.org/schemas/domain/qemu/1.0");
        return xp != NULL;
}

static double num(const char *expr)
{
        xmlXPathObjectPtr o = xmlXPathEvalExpression((const xmlChar *)expr, xp);
        double v = o ? xmlXPathCastToNumber(o) : -1;
        xmlXPathFreeObject(o);
        return v;
}

static char *str(const char *expr)
{
        xmlXPathObjectPtr o = xmlXPathEvalExpression((const xmlChar *)expr, xp);
        char *v = o ? (char *)xmlXPathCastToString(o) : NULL;
        xmlXPathFreeObject(o);
        return v;
}

static void is_xpath(const char *expr, const char *want)
{
        char *got = str(expr);
        is_str(got, want, "%s", expr);
        xmlFree(got);
}

/* The element `expr` selects, written back without indentation ("" if there is none),
 * to compare with a golden text. */
static void is_element(const char *expr, const char *want)
{
        xmlXPathObjectPtr o = xmlXPathEvalExpression((const xmlChar *)expr, xp);
        xmlBufferPtr buf = xmlBufferCreate();
        if (o && o->nodesetval && o->nodesetval->nodeNr == 1)
                xmlNodeDump(buf, doc, o->nodesetval->nodeTab[0], 0, 0);
        is_str((const char *)xmlBufferContent(buf), want, "%s", expr);
        xmlBufferFree(buf);
        xmlXPathFreeObject(o);
}

/* Under TCG: QEMU's default vCPU (qemu64) with the ARAT bit, which it emulates. Without
 * it the guest's lapic timer stops in deep C-states (C3STOP), and a microvm has no HPET
 * to stand in: the guest stays on a periodic 250 Hz tick for ever (bench/RESULTS.md). */
static const char tcg_cpu[] =
    "<cpu><model>qemu64</model><feature policy=\"require\" name=\"arat\"/></cpu>";

/* Under TCG: libvirt 9.0 without its cpu-unavailable-features capability reads the
 * started vCPU back with two qom-gets instead of ~400 (~0.65 s of a start; vm_xml.c). */
static const char no_qom_cpu_readback[] =
    "<qemu:capabilities><qemu:del capability=\"cpu-unavailable-features\"/>"
    "</qemu:capabilities>";

static const uint8_t mac[6] = {0x02, 0x74, 0x0a, 0x58, 0x00, 0x05};
static const char hostile[] = "/srv/a'b\"c<d>&e]]>";

static struct vm_domain_spec base(struct vm_share *shares, size_t n)
{
        return (struct vm_domain_spec){.domain_name = "tenantd-web",
                                       .microvm = true,
                                       .vcpus = 2,
                                       .memory = 512ULL << 20,
                                       .kernel = "/k/vmlinuz",
                                       .initrd = "/k/initramfs.img",
                                       .cmdline = VM_CMDLINE_BASE " x=1",
                                       .cpu_millicpus = 1500,
                                       .cpu_weight = 50,
                                       .console_log = "/var/lib/tenantd/vm/web/console.log",
                                       .agent_socket = "/var/lib/tenantd/vm/web/agent.sock",
                                       .shares = shares,
                                       .n_shares = n,
                                       .tap = "tnd-3",
                                       .mac = mac,
                                       .virtiofsd = "/usr/libexec/tenantd/tenantd-virtiofsd"};
}

int main(void)
{
        struct vm_share shares[] = {
            {.tag = "root", .source = "/srv/img", .target = "/", .fs = VM_FS_9P, .readonly = true},
            {.tag = "m0", .source = hostile, .target = "/data", .fs = VM_FS_VIRTIOFS},
        };
        struct vm_domain_spec s = base(shares, 2);

        ok(load(&s), "a microvm under TCG: the document parses");
        is_xpath("string(/domain/@type)", "qemu");
        is_xpath("string(/domain/name)", "tenantd-web");
        is_xpath("string(/domain/os/type/@machine)", "microvm");
        is_xpath("string(/domain/os/cmdline)", "console=ttyS0 quiet panic=-1 x=1");
        ok(num("count(/domain/features/acpi)") == 1, "ACPI on: the guest finds its devices there");
        is_xpath("string(/domain/features/tcg/tb-cache)", "32");
        is_element("/domain/cpu", tcg_cpu);
        is_xpath("string(/domain/memory)", "524288");
        is_xpath("string(/domain/vcpu)", "2");
        is_xpath("string(/domain/cputune/global_quota)", "150000");
        is_xpath("string(/domain/cputune/global_period)", "100000");
        is_xpath("string(/domain/cputune/shares)", "512");
        ok(num("count(/domain/cputune/emulator_quota)") == 0,
           "no emulator quota at creation (tightened after the start)");
        is_xpath("string(/domain/on_crash)", "destroy");
        is_xpath("string(/domain/on_poweroff)", "destroy");
        is_xpath("string(/domain/on_reboot)", "destroy");
        is_xpath("string(/domain/devices/memballoon/@model)", "virtio");
        is_xpath("string(/domain/devices/memballoon/@freePageReporting)", "on");
        ok(num("count(/domain/devices/memballoon/address[@type='virtio-mmio'])") == 1,
           "the balloon, for free page reporting only, on virtio-mmio");
        is_xpath("string(/domain/devices/controller[@type='usb']/@model)", "none");
        ok(num("count(/domain/devices/*[self::filesystem or self::interface or self::rng or "
               "self::controller[@type='virtio-serial']][not(address[@type='virtio-mmio'])])") == 0,
           "every virtio device has a virtio-mmio address");
        ok(num("count(/domain/devices/*/address[@type='pci'])") == 0, "nothing asks for PCI");
        is_xpath("string(/domain/devices/serial/@type)", "pty");
        is_xpath("string(/domain/devices/serial/log/@file)", "/var/lib/tenantd/vm/web/console.log");
        is_xpath("string(/domain/devices/channel/source/@path)",
                 "/var/lib/tenantd/vm/web/agent.sock");
        is_xpath("string(/domain/devices/channel/target/@name)", VM_AGENT_PORT_NAME);
        is_xpath("string(/domain/devices/filesystem[target/@dir='root']/driver/@type)", "path");
        ok(num("count(/domain/devices/filesystem[target/@dir='root']/readonly)") == 1,
           "a read-only share is 9p with <readonly/>");
        is_xpath("string(/domain/devices/filesystem[target/@dir='m0']/driver/@type)", "virtiofs");
        ok(num("count(/domain/devices/filesystem[target/@dir='m0']/readonly)") == 0,
           "a read-write share is virtiofs, not read-only");
        is_xpath("string(/domain/devices/filesystem[target/@dir='m0']/source/@dir)", hostile);
        is_xpath("string(/domain/devices/filesystem[target/@dir='m0']/binary/@path)",
                 "/usr/libexec/tenantd/tenantd-virtiofsd");
        ok(num("count(/domain/devices/filesystem[target/@dir='root']/binary)") == 0,
           "a 9p share names no virtiofsd");
        is_xpath("string(/domain/memoryBacking/source/@type)", "memfd");
        is_xpath("string(/domain/memoryBacking/access/@mode)", "shared");
        is_xpath("string(/domain/devices/interface/target/@dev)", "tnd-3");
        is_xpath("string(/domain/devices/interface/target/@managed)", "no");
        is_xpath("string(/domain/devices/interface/mac/@address)", "02:74:0a:58:00:05");
        is_xpath("string(/domain/qemu:commandline/qemu:arg[2]/@value)",
                 "virtio-mmio.force-legacy=false");
        is_xpath("string(/domain/qemu:commandline/qemu:arg[4]/@value)", "pit=on,pic=on,rtc=on");
        is_element("/domain/qemu:capabilities", no_qom_cpu_readback);

        /* KVM: no TCG workarounds, host CPU; no virtiofs share: no shared memory. */
        struct vm_share ro_only[] = {
            {.tag = "usr", .source = "/usr", .target = "/usr", .fs = VM_FS_9P, .readonly = true}};
        s = base(ro_only, 1);
        s.kvm = true;
        s.tap = NULL;
        s.cpu_millicpus = 0;
        ok(load(&s), "a microvm under KVM: the document parses");
        is_xpath("string(/domain/@type)", "kvm");
        is_element("/domain/cpu", "<cpu mode=\"host-passthrough\"/>");
        ok(num("count(/domain/features/tcg)") == 0, "no TCG settings under KVM");
        ok(num("count(/domain/memoryBacking)") == 0, "no shared memory without virtiofs");
        ok(num("count(/domain/devices/interface)") == 0, "no network card without a tap");
        ok(num("count(/domain/cputune/global_quota)") == 0, "no quota for an unlimited cpu.max");
        ok(num("count(//qemu:arg[@value='pit=on,pic=on,rtc=on'])") == 0,
           "no PIT/PIC override under KVM");
        ok(num("count(/domain/qemu:capabilities)") == 0,
           "libvirt's capabilities left alone under KVM (untested there)");

        /* The fallback: q35 with qboot, PCI addresses left to libvirt. */
        s = base(shares, 2);
        s.microvm = false;
        s.qboot_rom = "/usr/share/qemu/qboot.rom";
        ok(load(&s), "the q35 fallback: the document parses");
        is_xpath("string(/domain/os/type/@machine)", "q35");
        is_xpath("string(/domain/os/loader)", "/usr/share/qemu/qboot.rom");
        is_element("/domain/cpu", tcg_cpu);
        ok(num("count(//address[@type='virtio-mmio'])") == 0, "no virtio-mmio on q35");
        ok(num("count(/domain/qemu:commandline)") == 0, "no microvm overrides on q35");
        is_element("/domain/qemu:capabilities", no_qom_cpu_readback);

        /* Refusals. */
        _cleanup_err_ struct tn_err *err = NULL;
        char *xml = NULL;
        s = base(shares, 2);
        s.kernel = NULL;
        ok(vm_domain_xml(&s, &xml, &err) == -EINVAL && !xml, "no kernel: refused");
        tn_err_free(err);
        err = NULL;
        s = base(shares, 2);
        s.cmdline = "bad \xff utf-8";
        ok(vm_domain_xml(&s, &xml, &err) < 0 && !xml, "invalid UTF-8: refused, not written");
        tn_err_free(err);
        err = NULL;
        s = base(shares, 2);
        s.virtiofsd = NULL;
        ok(vm_domain_xml(&s, &xml, &err) == -EINVAL && !xml,
           "a read-write share without tenantd-virtiofsd: refused (never plain virtiofsd)");
        tn_err_free(err);
        err = NULL;
        struct vm_share ctl[] = {
            {.tag = "m0", .source = "/srv/a\x01b", .target = "/x", .fs = VM_FS_VIRTIOFS}};
        s = base(ctl, 1);
        ok(vm_domain_xml(&s, &xml, &err) < 0 && !xml, "a control character: refused");

        xmlXPathFreeContext(xp);
        xmlFreeDoc(doc);
        xmlCleanupParser();
        return tap_done();
}
