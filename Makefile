# tenantd — build, test, install.
#
#   make deps      install the Debian packages that are missing (quiet when none are)
#   make           build (flavour "release", or whatever `make asan` selected last)
#   make check     layer check, shellcheck, unit, golden, fuzz-corpus, integration and security tests
#   make asan      switch this tree to an ASan+UBSan build (then `make check`)
#   make release   switch back to the optimised build
#   make fuzz      libFuzzer targets with clang, FUZZ_SECONDS each (default 60); fuzz-build: only build
#   make vm-image  the microVM kernel + initramfs (vm-image-debug: with busybox)
#   make analyze   clang-tidy, cppcheck and gcc -fanalyzer on every C file of the programs
#   make shellcheck / check-demo-packages / check-build-packages  (see below)
#   make format / format-check / install / uninstall / clean

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
SBINDIR ?= $(PREFIX)/sbin
DATADIR ?= $(PREFIX)/share
MANDIR ?= $(DATADIR)/man
POLICYDIR ?= $(DATADIR)/tenantd/policies
LIBEXECDIR ?= $(PREFIX)/libexec/tenantd
BASHCOMPDIR ?= $(DATADIR)/bash-completion/completions
VMIMAGEDIR ?= $(DATADIR)/tenantd/vm
SYSCONFDIR ?= /etc
# systemd looks in /usr/local/lib too for sysusers.d and tmpfiles.d snippets.
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
# The unit is installed only when DESTDIR is set (packaging) or this directory exists
# (a systemd host).
SYSTEMDUNITDIR ?= /lib/systemd/system
DESTDIR ?=

B := build
FLAVOR ?= $(shell cat $(B)/.flavor 2>/dev/null || echo release)

# A process loads only the libraries it uses: libvirt and libxml2 (and glib, gnutls and
# the rest that libvirt pulls in) only in the VM runner, tenantd-vm-runner; tenantctl,
# tenantd and the tests that do not drive libvirt link BASE_PKG_LIBS.
# libnftables is not linked at all: host/net.c loads it (dlopen) when it first applies a
# ruleset, by NFTABLES_SONAME (that of libnftables1 in Debian 12). Nettle likewise:
# storage/keywrap.c loads it by LIBNETTLE_SONAME (libnettle8's) only when an encrypted
# volume is opened; its headers (nettle-dev) give the prototypes.
BASE_PKGS := yajl libseccomp libcap-ng libcgroup libnl-route-3.0
VM_PKGS := libvirt libxml-2.0
PKGS := $(BASE_PKGS) libnftables $(VM_PKGS)
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
BASE_PKG_LIBS := $(shell pkg-config --libs $(BASE_PKGS) 2>/dev/null || echo -lyajl -lseccomp -lcap-ng -lcgroup -lnl-route-3 -lnl-3)
NFTABLES_SONAME ?= libnftables.so.1
LIBNETTLE_SONAME ?= libnettle.so.8
VM_PKG_LIBS := $(shell pkg-config --libs $(VM_PKGS) 2>/dev/null || echo -lvirt -lxml2)
PKG_LIBS := $(BASE_PKG_LIBS) $(VM_PKG_LIBS)

WARNINGS := -Wall -Wextra -Werror -Wformat=2 -Wshadow -Wpointer-arith -Wstrict-prototypes \
	-Wmissing-prototypes -Wvla -Wundef -Wimplicit-fallthrough -Wwrite-strings \
	-Wdate-time -Wnested-externs -Werror=return-type
BASE_CFLAGS := -std=gnu11 -g -D_GNU_SOURCE -Isupervisor -fstack-protector-strong \
	-fno-strict-aliasing -DTENANTD_POLICYDIR='"$(POLICYDIR)"' \
	-DTENANTD_SYSCONFDIR='"$(SYSCONFDIR)"' -DTENANTD_VMIMAGEDIR='"$(VMIMAGEDIR)"' \
	-DTENANTD_LIBEXECDIR='"$(LIBEXECDIR)"' -DNFTABLES_SONAME='"$(NFTABLES_SONAME)"' \
	-DLIBNETTLE_SONAME='"$(LIBNETTLE_SONAME)"'

ifeq ($(FLAVOR),asan)
OPT := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
LDOPT := -fsanitize=address,undefined
else
OPT := -O2 -D_FORTIFY_SOURCE=2
LDOPT :=
endif

CFLAGS ?=
LDFLAGS ?=
ALL_CFLAGS := $(BASE_CFLAGS) $(OPT) $(WARNINGS) $(PKG_CFLAGS) $(CFLAGS)
ALL_LDFLAGS := $(LDOPT) $(LDFLAGS)

# Code shared by tenantd, tenantctl, the VM runner and the tests (no libvirt).
LIB_SRCS := supervisor/lib/err.c supervisor/lib/log.c supervisor/lib/json.c supervisor/lib/units.c \
	supervisor/spec/manifest.c supervisor/spec/manifest_explain.c supervisor/spec/caps.c \
	supervisor/spec/backup_schedule.c supervisor/spec/backup_sftp.c \
	supervisor/spec/policy.c supervisor/spec/policy_learn.c supervisor/lib/fileio.c supervisor/lib/strutil.c supervisor/lib/logtext.c supervisor/lib/logsink.c \
	supervisor/host/uidrange.c supervisor/host/cgroup.c supervisor/host/net.c supervisor/host/net_rules.c supervisor/host/etc_synth.c supervisor/host/etc_links.c supervisor/sandbox/rootfs.c \
	supervisor/sandbox/sandbox.c supervisor/lib/seccomp_notify.c supervisor/spec/launch.c supervisor/daemon/keeper.c supervisor/spec/manifest_edit.c supervisor/spec/audit.c supervisor/vm/qemu_proc.c \
	supervisor/monitor/monitor.c supervisor/monitor/alert.c supervisor/monitor/abuse.c supervisor/monitor/transfer.c supervisor/proto/agent_proto.c \
	supervisor/vm/vm_root.c supervisor/lib/trust.c supervisor/vm/share_check.c supervisor/proto/exec_proto.c \
	supervisor/vm/vm_runner.c supervisor/proto/control_proto.c supervisor/proto/runner_proto.c \
	supervisor/lib/buildtree.c supervisor/storage/volume.c supervisor/storage/keywrap.c
LIB_OBJS := $(LIB_SRCS:%.c=$(B)/%.o)
# The microVM backend that drives libvirt: only tenantd-vm-runner (and tests) link it.
VM_LIB_SRCS := supervisor/vm/vm_xml.c supervisor/vm/vm.c supervisor/vm/vm_agent.c \
	supervisor/vm/cmd_run_vm.c
VM_LIB_OBJS := $(VM_LIB_SRCS:%.c=$(B)/%.o)

UNIT_TESTS := $(patsubst tests/unit/%.c,$(B)/tests/unit/%,$(wildcard tests/unit/test_*.c))
# Programs the integration tests and benchmarks drive (tests/integration/*.c).
INTEGRATION_HELPERS := $(patsubst tests/integration/%.c,$(B)/tests/integration/%,$(wildcard tests/integration/*.c))
SECURITY_TESTS := $(patsubst tests/security/%.c,$(B)/tests/security/%,$(wildcard tests/security/*.c))
FUZZ_TARGETS := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_REPLAYS := $(FUZZ_TARGETS:%=$(B)/tests/fuzz/replay_%)

PROGRAMS := $(B)/tenantctl $(B)/tenantd $(B)/tenantd-keeper $(B)/tenantd-vm-runner $(B)/tenantd-virtiofsd \
	$(B)/guest-agent/tenant-agent

.PHONY: all check check-layers shellcheck check-demo-packages check-build-packages asan release fuzz fuzz-build analyze format format-check install uninstall clean deps demo \
	test-deps demo-deps vm-image vm-image-debug FORCE
.DEFAULT_GOAL := all

all: $(PROGRAMS)

# Objects depend on the flags they were built with: switching flavour rebuilds.
$(B)/.flags: FORCE
	@mkdir -p $(B)
	@echo '$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS)' | cmp -s - $@ || echo '$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS)' > $@
FORCE:

# V=1 shows the commands.
Q := $(if $(V),,@)

$(B)/%.o: %.c $(B)/.flags
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -Itests -MMD -MP -c $< -o $@

$(B)/libtenantd.a: $(LIB_OBJS)
	@rm -f $@
	$(Q)$(AR) rcs $@ $^

$(B)/libtenantd-vm.a: $(VM_LIB_OBJS)
	@rm -f $@
	$(Q)$(AR) rcs $@ $^

CTL_OBJS := $(B)/supervisor/cli/tenantctl.o $(B)/supervisor/cli/cmd_validate.o \
	$(B)/supervisor/cli/cmd_policy.o $(B)/supervisor/cli/cmd_run.o $(B)/supervisor/cli/cmd_ctl.o \
	$(B)/supervisor/cli/cmd_audit.o

$(B)/tenantctl: $(CTL_OBJS) $(B)/libtenantd.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(BASE_PKG_LIBS)

DAEMON_OBJS := $(B)/supervisor/daemon/tenantd.o $(B)/supervisor/daemon/daemon.o $(B)/supervisor/daemon/control.o \
	$(B)/supervisor/daemon/health.o $(B)/supervisor/daemon/monitor_glue.o $(B)/supervisor/daemon/backup.o

$(B)/tenantd: $(DAEMON_OBJS) $(B)/libtenantd.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(BASE_PKG_LIBS)

# A sandboxed tenant's keeper once its tenant runs (daemon/keeper_exec.h): libc and the
# loop's pure files only, so that it costs ~130 KiB and not a copy of tenantd's heap.
# It names denied calls as libseccomp does without linking it: tools/syscall-names.c
# writes the names at build time.
KEEPER_LOOP_SRCS := supervisor/daemon/keeper_loop.c supervisor/lib/logsink.c \
	supervisor/lib/logtext.c supervisor/lib/seccomp_notify.c
$(B)/gen/syscall_names.h: tools/syscall-names.c supervisor/lib/seccomp_notify.h $(B)/.flags
	@mkdir -p $(B)/gen $(B)/tools
	@$(if $(Q),echo "  GEN     $@")
	$(Q)$(CC) $(BASE_CFLAGS) $(WARNINGS) $(PKG_CFLAGS) -o $(B)/tools/syscall-names $< \
		$(shell pkg-config --libs libseccomp 2>/dev/null || echo -lseccomp)
	$(Q)$(B)/tools/syscall-names > $@.tmp && mv $@.tmp $@
$(B)/supervisor/daemon/keeper_loop.o: $(B)/gen/syscall_names.h
$(B)/supervisor/daemon/keeper_loop.o: ALL_CFLAGS += -I$(B)/gen
$(B)/tenantd-keeper: $(KEEPER_LOOP_SRCS:%.c=$(B)/%.o)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^

# The microVM runner (vm_runner.h): `tenantctl run` and tenantd's keepers exec it for a
# microVM tenant. The one program that links libvirt.
$(B)/tenantd-vm-runner: $(B)/supervisor/vm/vm_runner_main.o $(B)/libtenantd-vm.a $(B)/libtenantd.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS)

# What libvirt starts instead of virtiofsd for a read-write share (virtiofsd_wrap.c): a
# program of its own that loads libseccomp and nothing else.
$(B)/tenantd-virtiofsd: $(B)/supervisor/vm/virtiofsd_wrap.o
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(shell pkg-config --libs libseccomp 2>/dev/null || echo -lseccomp)

$(B)/tests/unit/%: $(B)/tests/unit/%.o $(B)/libtenantd-vm.a $(B)/libtenantd.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(B)/tests/integration/%: $(B)/tests/integration/%.o $(B)/libtenantd-vm.a $(B)/libtenantd.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(B)/tests/security/%: $(B)/tests/security/%.o $(B)/libtenantd-vm.a $(B)/libtenantd.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(B)/tests/integration/%: $(B)/tests/integration/%.o $(B)/libtenantd-vm.a $(B)/libtenantd.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(B)/tests/fuzz/replay_%: $(B)/tests/fuzz/fuzz_%.o $(B)/tests/fuzz/replay.o $(B)/libtenantd-vm.a \
		$(B)/libtenantd.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS)

# The guest agent: /init of every microVM. Static (the initramfs has no libc), linked
# with yajl's static archive, and always built optimised without sanitizers whatever
# the flavour (ASan cannot link statically), from objects of its own.
YAJL_STATIC := $(shell pkg-config --variable=libdir yajl 2>/dev/null || echo /usr/lib/x86_64-linux-gnu)/libyajl_s.a
AGENT_SRCS := guest-agent/tenant-agent.c guest-agent/guest_sys.c guest-agent/guest_seccomp.c \
	supervisor/proto/agent_proto.c supervisor/lib/seccomp_notify.c \
	supervisor/lib/json.c supervisor/lib/err.c supervisor/lib/fileio.c
AGENT_OBJS := $(AGENT_SRCS:%.c=$(B)/agent-obj/%.o)
AGENT_CFLAGS := $(BASE_CFLAGS) -O2 -D_FORTIFY_SOURCE=2 $(WARNINGS) $(PKG_CFLAGS) $(CFLAGS)

$(B)/agent-obj/%.o: %.c $(B)/.flags
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $< (agent)")
	$(Q)$(CC) $(AGENT_CFLAGS) -MMD -MP -c $< -o $@

$(B)/guest-agent/tenant-agent: $(AGENT_OBJS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@ (static)")
	$(Q)$(CC) -static $(LDFLAGS) -o $@ $^ $(YAJL_STATIC)

# The microVM kernel and initramfs (downloads Debian's kernel package once; see
# guest-agent/README.md). vm-image-debug adds busybox for tests and debugging.
VM_DIR := $(B)/vm
BUSYBOX ?= /bin/busybox

vm-image: $(B)/guest-agent/tenant-agent
	@guest-agent/build-image.sh $(B)/guest-agent/tenant-agent $(VM_DIR)

vm-image-debug: $(B)/guest-agent/tenant-agent
	@guest-agent/build-image.sh $(B)/guest-agent/tenant-agent $(VM_DIR) $(BUSYBOX)

# The payload that tests run inside tenants: static, so it needs nothing from the
# tenant's root, and built without sanitizers (it runs under seccomp profiles).
$(B)/tests/payload: tests/payload.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $< (static)")
	$(Q)$(CC) -std=gnu11 -O2 -Wall -Wextra -Werror -static -o $@ $<

# The microVM tests' helpers: a child subreaper for libvirtd, and a hostile stand-in
# for the guest agent (static: it is a guest's /init).
$(B)/tests/subreaper: tests/subreaper.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) -std=gnu11 -O2 -Wall -Wextra -Werror -o $@ $<

$(B)/tests/vm/test-guest: tests/vm/test-guest.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $< (static)")
	$(Q)$(CC) -std=gnu11 -O2 -Wall -Wextra -Werror -static -o $@ $<

TEST_BINS := $(UNIT_TESTS) $(INTEGRATION_HELPERS) $(SECURITY_TESTS) $(FUZZ_REPLAYS) $(B)/tests/payload \
	$(B)/tests/subreaper $(B)/tests/vm/test-guest

# Test objects are not intermediate files to delete after linking.
.SECONDARY:

# TESTS: an extended regular expression; only the suites whose names match run
# (make check TESTS='^unit/|security/'). Empty: all of them. TESTS_EXCLUDE=REGEX in
# the environment leaves out those that match it (tests/run-tests).
TESTS ?=
check: all $(TEST_BINS) check-layers shellcheck
	@BUILD=$(B) FLAVOR=$(FLAVOR) tests/run-tests '$(TESTS)'

# Fails when a lower layer of supervisor/ includes a higher one (docs/development.md).
check-layers:
	@tools/check-layers

# Every shell script in the tree: *.sh and files whose first line runs sh or bash (the
# settings are in .shellcheckrc and tests/.shellcheckrc), and the bash completion, which
# has no first line to say so (its "# shellcheck shell=bash" does).
SHELL_FILES = $(shell find . \( -path ./.git -o -path './build*' -o -path ./tests/fuzz/corpus \) -prune \
	-o -type f -print)
SHELL_SCRIPTS = $(sort $(filter %.sh,$(SHELL_FILES)) $(shell awk 'FNR == 1 && /^\#!.*\/(env )?(ba)?sh( |$$)/ \
	{ print FILENAME } { nextfile }' $(filter-out %.sh %.c %.h %.md %.json %.o %.err %.py,$(SHELL_FILES))) \
	contrib/bash-completion/tenantctl)

shellcheck:
	@command -v shellcheck >/dev/null || { echo "shellcheck is missing: make test-deps installs it"; exit 1; }
	@echo "shellcheck ($(words $(SHELL_SCRIPTS)) scripts)"
	$(Q)shellcheck $(SHELL_SCRIPTS)

# The demo makes what the integration tests make (the bridge tenantd0, tnd-N links, nft
# tables, libvirt domains): it waits for tests running from any checkout, under their
# lock (tests/run-tests), and they wait for it. -o: the demo's processes do not hold it.
TEST_LOCK ?= $(or $(TENANTD_TEST_LOCK),/run/lock/tenantd-tests.lock)
# What works today, on this machine: validation, policies, and sandboxed tenants
# started by tenantctl run (examples/demo.sh). Needs root for the sandbox part.
demo: demo-deps
	@$(MAKE) --no-print-directory all $(B)/tests/subreaper
	@mkdir -p $(dir $(TEST_LOCK))
	@TENANTCTL=$(CURDIR)/$(B)/tenantctl TENANTD=$(CURDIR)/$(B)/tenantd \
		flock -o $(TEST_LOCK) examples/demo.sh

asan:
	@mkdir -p $(B) && echo asan > $(B)/.flavor
	@$(MAKE) --no-print-directory FLAVOR=asan all $(TEST_BINS)

release:
	@mkdir -p $(B) && echo release > $(B)/.flavor
	@$(MAKE) --no-print-directory FLAVOR=release all

# ---- fuzzing (clang + libFuzzer) ----
FUZZ_SECONDS ?= 60
# Derived from the main flags (a define added to BASE_CFLAGS reaches the fuzzers too).
FUZZ_CFLAGS := $(BASE_CFLAGS) -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=all $(WARNINGS) $(PKG_CFLAGS) $(CFLAGS)

# The library's objects are compiled once for every target, in a directory of their own.
FUZZ_OBJS := $(LIB_SRCS:%.c=$(B)/fuzz-obj/%.o) $(VM_LIB_SRCS:%.c=$(B)/fuzz-obj/%.o)

$(B)/fuzz-obj/%.o: %.c $(B)/.flags
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $< (fuzz)")
	$(Q)clang $(FUZZ_CFLAGS) -Itests -MMD -MP -c $< -o $@

$(B)/fuzz/fuzz_%: $(B)/fuzz-obj/tests/fuzz/fuzz_%.o $(FUZZ_OBJS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@ (fuzz)")
	$(Q)clang $(FUZZ_CFLAGS) -o $@ $^ $(PKG_LIBS)

fuzz-build: $(FUZZ_TARGETS:%=$(B)/fuzz/fuzz_%)

fuzz: $(FUZZ_TARGETS:%=$(B)/fuzz/fuzz_%)
	@for t in $(FUZZ_TARGETS); do \
		mkdir -p tests/fuzz/corpus/$$t $(B)/fuzz/new-$$t; \
		echo "fuzz: $$t for $(FUZZ_SECONDS)s"; \
		dict=; [ ! -f tests/fuzz/$$t.dict ] || dict=-dict=tests/fuzz/$$t.dict; \
		$(B)/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -max_len=300000 \
			$$dict $(B)/fuzz/new-$$t tests/fuzz/corpus/$$t \
			|| exit 1; \
	done

# ---- static analysis ----
# Every C file of the programs: the library, tenantctl, tenantd and its helpers, and the
# guest agent (a new file is covered without being listed). ANALYZE_JOBS files at a time.
ANALYZE_SRCS = $(sort $(wildcard supervisor/*/*.c guest-agent/*.c))
ANALYZE_JOBS ?= 2

# keeper_loop.c includes the generated table of call names (tools/syscall-names.c).
analyze: $(B)/gen/syscall_names.h
	@echo "clang-tidy ($(words $(ANALYZE_SRCS)) files)"
	$(Q)printf '%s\n' $(ANALYZE_SRCS) | xargs -P$(ANALYZE_JOBS) -I{} \
		clang-tidy --quiet {} -- $(BASE_CFLAGS) $(PKG_CFLAGS) -I$(B)/gen
	# cppcheck cannot see __attribute__((cleanup)): its leak reports are about the
	# project's _cleanup_ variables, and statement expressions (TAKE_PTR) confuse its AST.
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability --inline-suppr \
		--std=c11 -D_GNU_SOURCE -Isupervisor -I$(B)/gen --suppress=missingIncludeSystem \
		--suppress=memleak --suppress=resourceLeak --suppress=internalAstError \
		-j$(ANALYZE_JOBS) $(ANALYZE_SRCS)
	@# gcc's analyzer, like clang's malloc model, does not run cleanup attributes: its
	@# leak reports are the project's _cleanup_ variables. LeakSanitizer covers leaks.
	@echo "gcc -fanalyzer ($(words $(ANALYZE_SRCS)) files)"
	$(Q)printf '%s\n' $(ANALYZE_SRCS) | xargs -P$(ANALYZE_JOBS) -I{} \
		$(CC) $(BASE_CFLAGS) $(WARNINGS) $(PKG_CFLAGS) -I$(B)/gen -O1 -fanalyzer -Wno-analyzer-malloc-leak \
		-Wno-analyzer-fd-leak -c {} -o /dev/null

# ---- formatting ----
FORMAT_FILES = $(wildcard supervisor/*/*.[ch] tests/*.[ch] tests/unit/*.[ch] tests/security/*.[ch] tests/vm/*.[ch] \
	tests/fuzz/*.[ch] tests/integration/*.[ch] guest-agent/*.[ch] bench/*.c)

format:
	clang-format -i $(FORMAT_FILES)

format-check:
	clang-format --dry-run --Werror $(FORMAT_FILES)

# ---- installation ----
# Binaries, policies, man pages, bash completion, the systemd unit, the sysusers.d and
# tmpfiles.d snippets, and an example configuration that never replaces one already
# there. uninstall leaves SYSCONFDIR/tenantd (configuration, manifests) and the state
# directory alone. See docs/operations.md.
install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(POLICYDIR)/seccomp \
		$(DESTDIR)$(POLICYDIR)/capabilities $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(TMPFILESDIR) \
		$(DESTDIR)$(SYSCONFDIR)/tenantd
	install -m 0755 $(B)/tenantctl $(DESTDIR)$(BINDIR)/tenantctl
	install -m 0755 $(B)/tenantd $(DESTDIR)$(SBINDIR)/tenantd
	install -d $(DESTDIR)$(LIBEXECDIR)
	install -m 0755 $(B)/tenantd-virtiofsd $(DESTDIR)$(LIBEXECDIR)/tenantd-virtiofsd
	install -m 0755 $(B)/tenantd-vm-runner $(DESTDIR)$(LIBEXECDIR)/tenantd-vm-runner
	install -m 0755 $(B)/tenantd-keeper $(DESTDIR)$(LIBEXECDIR)/tenantd-keeper
	install -m 0644 policies/seccomp/*.json $(DESTDIR)$(POLICYDIR)/seccomp/
	install -m 0644 policies/capabilities/*.json $(DESTDIR)$(POLICYDIR)/capabilities/
	install -m 0644 docs/man/tenantd-manifest.5 $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 docs/man/tenantd.8 docs/man/tenantctl.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 contrib/bash-completion/tenantctl $(DESTDIR)$(BASHCOMPDIR)/tenantctl
	install -m 0644 contrib/sysusers.d/tenantd.conf $(DESTDIR)$(SYSUSERSDIR)/tenantd.conf
	install -m 0644 contrib/tmpfiles.d/tenantd.conf $(DESTDIR)$(TMPFILESDIR)/tenantd.conf
	@if [ -n "$(DESTDIR)" ] || [ -d "$(SYSTEMDUNITDIR)" ]; then \
		echo "install tenantd.service -> $(DESTDIR)$(SYSTEMDUNITDIR)"; \
		install -d $(DESTDIR)$(SYSTEMDUNITDIR) && \
		sed 's|@SBINDIR@|$(SBINDIR)|g' contrib/systemd/tenantd.service \
			> $(DESTDIR)$(SYSTEMDUNITDIR)/tenantd.service && \
		chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/tenantd.service; \
	else \
		echo "no $(SYSTEMDUNITDIR): tenantd.service not installed (set SYSTEMDUNITDIR)"; \
	fi
	@conf=$(DESTDIR)$(SYSCONFDIR)/tenantd/tenantd.conf; \
	if [ -e "$$conf" ]; then \
		echo "keeping $$conf"; \
	else \
		echo "install contrib/tenantd.conf.example -> $$conf"; \
		install -m 0644 contrib/tenantd.conf.example "$$conf"; \
	fi
	@[ -d $(DESTDIR)$(SYSCONFDIR)/tenantd/services ] || \
		install -d -m 0750 $(DESTDIR)$(SYSCONFDIR)/tenantd/services

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/tenantctl $(DESTDIR)$(SBINDIR)/tenantd
	rm -f $(DESTDIR)$(LIBEXECDIR)/tenantd-virtiofsd $(DESTDIR)$(LIBEXECDIR)/tenantd-vm-runner \
		$(DESTDIR)$(LIBEXECDIR)/tenantd-keeper
	rmdir $(DESTDIR)$(LIBEXECDIR) 2>/dev/null || true
	rm -rf $(DESTDIR)$(DATADIR)/tenantd
	rm -f $(DESTDIR)$(MANDIR)/man5/tenantd-manifest.5 $(DESTDIR)$(MANDIR)/man8/tenantd.8 \
		$(DESTDIR)$(MANDIR)/man8/tenantctl.8
	rm -f $(DESTDIR)$(BASHCOMPDIR)/tenantctl
	rm -f $(DESTDIR)$(SYSUSERSDIR)/tenantd.conf $(DESTDIR)$(TMPFILESDIR)/tenantd.conf
	rm -f $(DESTDIR)$(SYSTEMDUNITDIR)/tenantd.service

clean:
	rm -rf $(B)

# ---- dependencies (Debian 12) ----
# Build: compiler, pkg-config and the chosen libraries. Check: python3 (a payload run
# under the seccomp profiles). Fuzz/analyze/format: clang and its tools, cppcheck.
DEB_PACKAGES := make gcc pkg-config libyajl-dev libseccomp-dev libcap-ng-dev libcgroup-dev \
	libnl-route-3-dev libnftables-dev libvirt-dev nettle-dev \
	python3 clang clang-tidy clang-format cppcheck

deps:
	@missing=$$(for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "deps: installing" $$missing; \
		SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# What the real-service and network tests use (they skip loudly without it): installed
# without starting the services' daemons on this machine (invoke-rc.d asks policy-rc.d;
# 101 means "do not"), and the previous policy-rc.d, if any, is put back.
TEST_PACKAGES := nginx-light redis-server redis-tools postgresql curl openssl procps \
	util-linux iproute2 nftables iperf3 stress-ng rsyslog bubblewrap crun \
	libvirt-daemon-system qemu-system-x86 qemu-utils busybox-static cpio kmod shellcheck strace \
	e2fsprogs restic btrfs-progs openssh-server openssh-client

# Installs the packages given that are missing, without starting their daemons.
define install_quietly
	@missing=$$(for p in $(1); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; \
	done); \
	[ -z "$$missing" ] && exit 0; \
	echo "$@: installing" $$missing; \
	SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	prc=/usr/sbin/policy-rc.d; saved=$$(mktemp); had=; \
	if [ -e $$prc ]; then $$SUDO cp -p $$prc $$saved; had=1; fi; \
	printf '#!/bin/sh\nexit 101\n' | $$SUDO tee $$prc >/dev/null && $$SUDO chmod 755 $$prc; \
	DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	rc=$$?; \
	if [ -n "$$had" ]; then $$SUDO mv $$saved $$prc; else $$SUDO rm -f $$prc; rm -f $$saved; fi; \
	exit $$rc
endef

# The packages, and the microVM image (a Debian kernel fetched with apt-get download,
# cached in build/vm), that the tests use.
test-deps: deps
	$(call install_quietly,$(TEST_PACKAGES))
	@$(MAKE) --no-print-directory vm-image

# What the demo's microVM needs besides the build: libvirt and QEMU, and the image (its
# builder runs depmod and cpio). make check-demo-packages proves the list complete.
DEMO_PACKAGES := libvirt-daemon-system qemu-system-x86 curl kmod cpio

demo-deps: deps
	$(call install_quietly,$(DEMO_PACKAGES))
	@$(MAKE) --no-print-directory vm-image

# A machine that kept packages from earlier runs cannot show that a fresh one gets every
# program a target runs: these run the target under tools/check-packages, which fails for
# a program from a package that the target's own list does not install. The build's check
# means something on a clean tree (CI's first build).
# git: the image builder's timestamps come from the last commit when there is one. The
# demo itself runs under the tests' lock (see demo), so a libvirtd it starts and stops is
# not one that another checkout's tests are using; taking the lock here too would wait
# for ourselves.
check-demo-packages:
	@OPTIONAL=git tools/check-packages "$(DEB_PACKAGES) $(DEMO_PACKAGES)" \
		$(MAKE) --no-print-directory demo

check-build-packages:
	@OPTIONAL=git tools/check-packages "$(DEB_PACKAGES)" $(MAKE) --no-print-directory all

-include $(shell find $(B) -name '*.d' 2>/dev/null)
