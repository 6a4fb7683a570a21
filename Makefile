# ktlsgw — one non-recursive Makefile. Generated files live under $(B).
# Quiet unless V=1.
.DELETE_ON_ERROR:
.SUFFIXES:

B        ?= build
PREFIX   ?= /usr/local
DESTDIR  ?=
CC       ?= cc
PKGS     := openssl liburing inih
CFLAGS   ?= -O2 -g
KG_CFLAGS := -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
             -D_GNU_SOURCE -Iuserspace $(shell pkg-config --cflags $(PKGS))
LDLIBS   := $(shell pkg-config --libs $(PKGS)) -lpthread

ifeq ($(V),1)
Q :=
msg :=
else
Q := @
msg = @printf '  %-8s %s\n' $(1) $(2);
endif

LIB_SRCS := $(filter-out userspace/main.c,$(wildcard userspace/*.c))
LIB_OBJS := $(patsubst userspace/%.c,$(B)/obj/%.o,$(LIB_SRCS))
BIN      := $(B)/ktlsgw
TOOLS    := $(B)/kg-backend $(B)/kg-loadgen
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(B)/unit/%,$(UNIT_SRCS))

.PHONY: all run test unit integration install clean tools
all: $(BIN) $(TOOLS)

$(B)/obj/%.o: userspace/%.c $(wildcard userspace/*.h) | $(B)/obj
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(KG_CFLAGS) -c $< -o $@

$(B)/libkg.a: $(LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BIN): $(B)/obj/main.o $(B)/libkg.a
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(B)/kg-backend: tests/tools/kg_backend.c bench/loadgen/stream.h | $(B)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(KG_CFLAGS) -o $@ $< -lcrypto -lpthread

$(B)/kg-loadgen: bench/loadgen/loadgen.c bench/loadgen/stream.h | $(B)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(KG_CFLAGS) -o $@ $< $(LDLIBS)

$(B)/unit/%: tests/unit/%.c $(B)/libkg.a | $(B)/unit
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(KG_CFLAGS) $(shell pkg-config --cflags cmocka) -o $@ $< $(B)/libkg.a $(LDLIBS) $(shell pkg-config --libs cmocka)

$(B) $(B)/obj $(B)/unit:
	$(Q)mkdir -p $@

tools: $(TOOLS)

# The demo: PKI, HTTP backend and the gateway on an embedded default config.
run: all
	$(Q)sh tests/demo.sh $(B)

unit: $(UNIT_BINS)
	$(Q)fail=0; for t in $(UNIT_BINS); do $$t || fail=1; done; exit $$fail

integration: all
	$(Q)sh tests/integration/run.sh $(B)

test: all unit integration

install: $(BIN)
	install -d $(DESTDIR)$(PREFIX)/sbin
	install -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/sbin/ktlsgw

clean:
	rm -rf $(B)
