EXTENSION = idempotency
EXTVERSION = 1.1
MODULE_big = idempotency
# the 1.1 install script is 1.0's followed by the 1.0--1.1 upgrade
DATA = sql/$(EXTENSION)--1.0.sql $(wildcard sql/$(EXTENSION)--*--*.sql)
DATA_built = sql/$(EXTENSION)--$(EXTVERSION).sql
OBJS = src/idempotency.o src/settings.o src/fingerprint.o src/keystore.o \
	src/statement.o src/execute.o src/maintenance.o src/guard.o \
	src/canonical.o src/claim.o src/plancache.o src/scope.o \
	src/request.o src/stats.o src/worker.o src/citus.o \
	src/colocated.o
PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers

# pg_regress reads test/sql and test/specs; expected output lives in ./expected
REGRESS = $(patsubst test/sql/%.sql,%,$(sort $(wildcard test/sql/*.sql)))
REGRESS_OPTS = --inputdir=test --load-extension=$(EXTENSION)
ISOLATION = $(patsubst test/specs/%.spec,%,$(sort $(wildcard test/specs/*.spec)))
ISOLATION_OPTS = --inputdir=test --outputdir=. --load-extension=$(EXTENSION)
TAP_TESTS = 1
PROVE_TESTS = $(sort $(wildcard test/t/*.pl))

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)

# On a fresh machine PGXS comes with the server headers, which `make demo`
# and `make test` install first: only they work without it.
ifneq ($(wildcard $(PGXS)),)
include $(PGXS)
ifeq ($(shell test $(VERSION_NUM) -ge 140000; echo $$?),1)
$(error idempotency requires PostgreSQL 14 or later)
endif
# PGXS tracks no header dependencies: every object includes these
$(OBJS): $(wildcard src/*.h)
$(DATA_built): sql/$(EXTENSION)--1.0.sql sql/$(EXTENSION)--1.0--1.1.sql
	cat $^ > $@
else
all install installcheck:
	$(error PGXS not found: install postgresql-server-dev-15, or run make demo or make test, which install it)
endif

.PHONY: demo test test-citus bench deb dist
demo:
	scripts/demo.sh
test:
	scripts/test.sh
test-citus:
	scripts/test-citus.sh
bench:
	scripts/bench.sh
deb:
	scripts/deb.sh
dist:
	scripts/dist.sh
