# durable: PGXS build
EXTENSION = durable
EXTVERSION = 0.2
MODULE_big = durable
OBJS = $(patsubst %.c,%.o,$(wildcard src/*.c))
# the install script of every release and the upgrade scripts between them
DATA = $(wildcard sql/durable--*.sql)
PG_CONFIG ?= pg_config

PG_CFLAGS += -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare
# warnings are fatal in the test build (test/run: make WERROR=1), not in a
# user's make: another compiler (make CC=clang) warns about the server's
# own gcc flags, which is no reason to refuse to build
ifdef WERROR
PG_CFLAGS += -Werror
endif
ifdef ASSERTS
PG_CPPFLAGS += -DUSE_ASSERT_CHECKING
endif
# the library refuses a database whose extension is at another version
# (src/spi.c): its plans are written for this release's tables
PG_CPPFLAGS += -DDURABLE_VERSION=\"$(EXTVERSION)\"


# every sql/*.sql but the install script is a regression test; setup first
REGRESS = setup $(filter-out setup,$(sort $(basename $(notdir $(filter-out sql/durable--%,$(wildcard sql/*.sql))))))
REGRESS_OPTS = --temp-config=test/durable.conf --temp-instance=$(TEMP_INSTANCE) --load-extension=durable
ISOLATION = $(sort $(basename $(notdir $(wildcard specs/*.spec))))
ISOLATION_OPTS = --temp-config=test/durable.conf --temp-instance=./tmp_check_iso --load-extension=durable
TEMP_INSTANCE ?= ./tmp_check

EXTRA_CLEAN = tmp_check tmp_check_iso results output_iso log

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)
