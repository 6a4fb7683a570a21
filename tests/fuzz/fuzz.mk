# libFuzzer targets for the input parsers, included from the Makefile.
#
#   make fuzz          build every target, run each FUZZ_SECONDS (60) seconds
#   make fuzz-short    the same, 10 seconds each (the CI pass)
#
# Everything lands in $(B)/fuzz: binaries, the working corpus (seeded from
# tests/fuzz/corpus/<target>/ and grown there, so the tree stays clean),
# crash inputs under artifacts/<target>/ and one log per target.
#
# The userspace files are compiled again here, with clang and the
# sanitizers: $(B)/libkg.a is gcc's and uninstrumented, so a fuzzer linked
# with it would get no coverage feedback from it and catch no overflow in it.
# Only the files a target needs are compiled; none needs the BPF skeletons.

FUZZ_CC      ?= clang-14
FUZZ_SECONDS ?= 60
FUZZ_SHORT_SECONDS ?= 10
FUZZ_B       := $(B)/fuzz
FUZZ_TARGETS := config fingerprint proxy_v2 admin cli_args

FUZZ_SAN     := -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
# library objects: instrumented for coverage, without libFuzzer's main()
FUZZ_OBJ_SAN := -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
# the project's flags; -Werror only for our own files, since clang may warn
# where gcc does not and userspace/ is not this fragment's to change
FUZZ_CFLAGS  := -g -O1 -fno-omit-frame-pointer $(filter-out -Werror,$(KG_CFLAGS))

# userspace files each target links (besides its own file and unreachable.c)
FUZZ_LINK_config      := config config_check ini confval fleet_conf log log_ext json
FUZZ_LINK_fingerprint := verify hex
FUZZ_LINK_proxy_v2    := proxy_proto
FUZZ_LINK_admin       := admin stats log log_ext json
FUZZ_LINK_cli_args    := cli cli_run cli_fingerprint cli_pki cli_revoke cli_conn cli_stats \
                         cli_fleet config config_check ini confval fleet_conf log log_ext verify hex revstate admin stats json
# config: host names are never resolved (see fuzz_config.c)
FUZZ_LDFLAGS_config   := -Wl,--wrap=getaddrinfo

FUZZ_BINS := $(patsubst %,$(FUZZ_B)/fuzz_%,$(FUZZ_TARGETS))
FUZZ_HDRS := $(wildcard userspace/*.h) tests/fuzz/kg_fuzz.h

$(FUZZ_B)/obj/%.o: userspace/%.c $(wildcard userspace/*.h) | $(FUZZ_B)/obj
	$(call msg,FUZZCC,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_OBJ_SAN) -c $< -o $@

$(FUZZ_B)/obj/kg_fuzz_unreachable.o: tests/fuzz/unreachable.c $(FUZZ_HDRS) | $(FUZZ_B)/obj
	$(call msg,FUZZCC,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -Werror $(FUZZ_OBJ_SAN) -c $< -o $@

# $(1): target name
define FUZZ_TARGET_RULE
$(FUZZ_B)/fuzz_$(1): tests/fuzz/fuzz_$(1).c $(FUZZ_HDRS) $(FUZZ_DEPS_$(1)) \
		$(patsubst %,$(FUZZ_B)/obj/%.o,$(FUZZ_LINK_$(1))) $(FUZZ_B)/obj/kg_fuzz_unreachable.o
	$$(call msg,FUZZLD,$$@)
	$$(Q)$$(FUZZ_CC) $$(FUZZ_CFLAGS) -Werror $$(FUZZ_SAN) -o $$@ $$< \
		$(patsubst %,$(FUZZ_B)/obj/%.o,$(FUZZ_LINK_$(1))) $(FUZZ_B)/obj/kg_fuzz_unreachable.o \
		$(FUZZ_LDFLAGS_$(1)) $$(LDLIBS)
endef
$(foreach t,$(FUZZ_TARGETS),$(eval $(call FUZZ_TARGET_RULE,$(t))))

$(FUZZ_B)/obj:
	$(Q)mkdir -p $@

fuzz-build: $(FUZZ_BINS)

fuzz: $(FUZZ_BINS)
	$(Q)sh tests/fuzz/run.sh $(FUZZ_B) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-short: $(FUZZ_BINS)
	$(Q)sh tests/fuzz/run.sh $(FUZZ_B) $(FUZZ_SHORT_SECONDS) $(FUZZ_TARGETS)

.PHONY: fuzz-build
