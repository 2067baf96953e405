# crux: one Makefile. `make` builds build/crux; `make test` builds the sanitizer build and
# runs the unit and integration tests; `make valgrind`, `make lint`, `make clean`.
CC      ?= gcc
PYTHON  ?= python3
VENV    ?= .venv
WARN     = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla \
           -Wformat=2 -Wno-format-nonliteral -Werror
CSTD     = -std=c17 -D_GNU_SOURCE
INC      = -Isrc
OPT     ?= -O2 -g
LIBS     = -ldw -lelf -lsqlite3 -lz -lm
SAN      = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

# src/agent/ is the in-process extension module, built per interpreter by 'make agent'.
SRCS     := $(shell find src -name '*.c' -not -path 'src/agent/*' | sort)
LIB_SRCS := $(filter-out src/main.c,$(SRCS))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)

REL_OBJS  := $(SRCS:%.c=build/rel/%.o)
ASAN_OBJS := $(SRCS:%.c=build/asan/%.o)
ASAN_LIB  := $(LIB_SRCS:%.c=build/asan/%.o)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=build/asan/unit/%)

.PHONY: all test unit integration valgrind lint clean golden-update bench venv
all: build/crux

build/crux: $(REL_OBJS)
	$(CC) $(OPT) -o $@ $^ $(LIBS)

build/rel/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) $(INC) $(OPT) -MMD -MP -c -o $@ $<

build/asan/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) $(INC) -O1 -g $(SAN) -MMD -MP -c -o $@ $<

build/asan/crux: $(ASAN_OBJS)
	$(CC) $(SAN) -o $@ $^ $(LIBS)

build/asan/unit/%: tests/unit/%.c $(ASAN_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) $(INC) -Itests/unit -O1 -g $(SAN) -o $@ $< $(ASAN_LIB) $(LIBS)

unit: $(UNIT_BINS)
	@fail=0; for t in $(UNIT_BINS); do $$t || fail=1; done; exit $$fail

# Integration tests drive the sanitizer build against every installed CPython.
integration: build/asan/crux build/crux
	CRUX=$(abspath build/asan/crux) $(VENV)/bin/python -m pytest -q --reruns 1 tests/integration $(PYTEST_ARGS)

test: unit integration

valgrind: build/crux
	CRUX_VALGRIND=1 CRUX=$(abspath build/crux) $(VENV)/bin/python -m pytest -q \
		tests/integration/test_valgrind.py

venv:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -r tests/requirements.txt

# Benchmarks take minutes and print ratios; see bench/README.md.
bench: build/crux
	$(PYTHON) bench/sample_cost.py --quick
	$(PYTHON) bench/overhead.py --quick

lint:
	@! grep -rnE '\b(sprintf|strcpy|strcat|strtok|atoi|gets)\s*\(' src tests/unit || \
		(echo "lint: banned function used" && false)
	clang-format --dry-run --Werror $(SRCS) $(wildcard src/*/*.h)

golden-update: build/asan/unit/test_export
	CRUX_GOLDEN_UPDATE=1 build/asan/unit/test_export

clean:
	rm -rf build

# -- stages (issue 5.3): the in-process agent per interpreter; cJSON reads OTLP/JSON --------
.PHONY: agent
LIBS += -lcjson
agent:
	tools/build_agent.sh build/agent
integration: agent
# -- end stages --

# -- load (issue 5.1): OpenSSL for crux load https:// ---------------------------------------
LIBS += -lssl -lcrypto
# -- end load --

# -- serve (issue 13.3): libmicrohttpd answers crux serve's HTTP requests ----------------------
LIBS += -lmicrohttpd -lpthread
# -- end serve --
# -- otlp out (issue 13.4): libcurl posts request spans to an OTLP/HTTP collector ----------
LIBS += -lcurl
# -- end otlp out --

# -- gpu (issue 12): a scripted NVML stand-in, loaded in place of the driver's by the tests ----
.PHONY: nvml-standin
NVML_STANDIN = build/nvml-standin/libnvidia-ml.so.1
$(NVML_STANDIN): tests/gpu/nvml_standin.c src/target/nvml.h
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) -Wno-missing-prototypes $(INC) -O1 -g -fPIC -shared \
		-fvisibility=hidden -Wl,-soname,libnvidia-ml.so.1 -o $@ $<
nvml-standin: $(NVML_STANDIN)
integration: $(NVML_STANDIN)
# -- end gpu --

-include $(REL_OBJS:.o=.d) $(ASAN_OBJS:.o=.d)
