# derm-cds. The two commands a fresh machine needs (README.md):
#   make run    set up, build, prepare the default model, start the service
#   make test   set up, build, prepare the test models, run every test
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c

BUILD ?= build
BUILD_ASAN ?= build-asan
BUILD_ARM64 ?= build-arm64
BUILD_FUZZ ?= build-fuzz
BUILD_TSAN ?= build-tsan
FUZZ_SECONDS ?= 30
JOBS ?= 2
REPOSITORY ?= models
HOST ?= 127.0.0.1
PORT ?= 8080
CCACHE := $(if $(shell command -v ccache),-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
DERMCDS := $(BUILD)/bin/dermcds

.PHONY: help setup configure build models test test-unit test-asan test-arm64 run clean image format-check format tidy lint-python test-tsan fuzz

help:
	@echo "make run      set up, build, prepare models/ and start pms-derm-cds on $(HOST):$(PORT)"
	@echo "make test     set up, build, prepare models/, run every test (also under ASan/UBSan)"
	@echo "make setup    install Debian packages and fetch pinned archives into .deps/"
	@echo "make build    configure and build into $(BUILD)/"
	@echo "make models   build the model packages in $(REPOSITORY)/ (no-op when up to date)"
	@echo "make test-arm64  cross-build for aarch64, run the tests under qemu-aarch64, compare with x86_64"
	@echo "make image    build the pms-derm-cds container image with podman (docs/deploy.md)"
	@echo "make fuzz     build the libFuzzer targets with clang-14, run each FUZZ_SECONDS=$(FUZZ_SECONDS) s; fails on any finding"
	@echo "make test-tsan  the core, the service and their integration tests under ThreadSanitizer"
	@echo "make clean    remove build trees (keeps .deps/, .cache/ and models/)"
	@echo "make format-check  check C/C++ formatting against .clang-format (changes nothing)"
	@echo "make format   reformat every tracked C/C++ file to .clang-format"
	@echo "make tidy     run clang-tidy (.clang-tidy) over our C++ sources, using $(BUILD)/compile_commands.json"
	@echo "make lint-python   run flake8 (.flake8) over python/, tests/, bench/ and scripts/"

setup:
	scripts/provision.sh

configure: setup
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CCACHE) -DDERMCDS_TEST_REPOSITORY=$(abspath $(REPOSITORY))

build: configure
	cmake --build $(BUILD) -j$(JOBS)

models: build
	scripts/build-models.sh $(DERMCDS) $(REPOSITORY)

test-unit: build models
	ctest --test-dir $(BUILD) --output-on-failure -j$(JOBS) --timeout 900

# The core and the tools again, built with AddressSanitizer and UndefinedBehaviorSanitizer.
test-asan: setup models
	cmake -S . -B $(BUILD_ASAN) -G Ninja -DCMAKE_BUILD_TYPE=Debug $(CCACHE) -DDERMCDS_SANITIZE=ON \
	  -DDERMCDS_BUILD_SERVICE=OFF -DDERMCDS_BUILD_CONVERTER=OFF -DDERMCDS_BUILD_BENCH=OFF \
	  -DDERMCDS_TEST_REPOSITORY=$(abspath $(REPOSITORY))
	cmake --build $(BUILD_ASAN) -j$(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  LSAN_OPTIONS=suppressions=$(abspath tests/lsan.supp) \
	  ctest --test-dir $(BUILD_ASAN) --output-on-failure -j$(JOBS) -L sanitize --timeout 900

# The library, CLI, C API and their tests cross-built for aarch64 (cmake/toolchains/), run under
# qemu-aarch64, plus a side-by-side comparison with the x86_64 build's results (docs/edge.md).
# The service, the converter and the benchmarks are not cross-built. Left out of the run: the
# Python tests that start the dermcds binary themselves (cli.black_box, parity.gate, and the
# validation set only the latter uses), which only an arm64 host or binfmt_misc could do, and the
# export pipeline's own Python tests (label python), which involve no arm64 code.
ARM64_EXCLUDE := ^(cli\.black_box|parity\.gate|parity\.validation_set)$$
test-arm64: build models
	cmake -S . -B $(BUILD_ARM64) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CCACHE) \
	  -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake \
	  -DDERMCDS_BUILD_SERVICE=OFF -DDERMCDS_BUILD_CONVERTER=OFF -DDERMCDS_BUILD_BENCH=OFF \
	  -DDERMCDS_TEST_REPOSITORY=$(abspath $(REPOSITORY)) -DDERMCDS_HOST_CLI=$(abspath $(DERMCDS))
	cmake --build $(BUILD_ARM64) -j$(JOBS)
	ctest --test-dir $(BUILD_ARM64) --output-on-failure -j$(JOBS) --timeout 1800 -E '$(ARM64_EXCLUDE)' -LE '^python$$'

# libFuzzer targets (tests/fuzz/, docs/testing.md "Fuzzing") built with Debian's clang-14 and
# -fsanitize=fuzzer,address,undefined; each runs FUZZ_SECONDS seconds from the committed seeds.
fuzz: setup
	cmake -S . -B $(BUILD_FUZZ) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CCACHE) \
	  -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 -DDERMCDS_FUZZ=ON -DDERMCDS_BUILD_BENCH=OFF
	cmake --build $(BUILD_FUZZ) -j$(JOBS) --target fuzz_targets
	scripts/run-fuzz.sh $(BUILD_FUZZ)/bin/fuzz $(FUZZ_SECONDS) $(BUILD_FUZZ)/fuzz-work

# The core, the service and their tests under ThreadSanitizer; the service's integration tests
# (hot swap under load included) must finish with 0 reports: halt_on_error makes any report fail
# its test. Left out: the load test (a capacity measurement, meaningless at TSan's speed), the web
# page (a browser, no service code of ours) and TFLite packages (the converter is not built).
test-tsan: setup models
	cmake -S . -B $(BUILD_TSAN) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CCACHE) -DDERMCDS_TSAN=ON \
	  -DDERMCDS_BUILD_CONVERTER=OFF -DDERMCDS_BUILD_BENCH=OFF -DDERMCDS_TEST_REPOSITORY=$(abspath $(REPOSITORY))
	cmake --build $(BUILD_TSAN) -j$(JOBS) --target pms-derm-cds dermcds_cli service_unit_tests service_api_tests \
	  service_serving_tests service_http_fault_tests service_default_model_tests
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(abspath tests/tsan.supp)" \
	  ctest --test-dir $(BUILD_TSAN) --output-on-failure -j$(JOBS) --timeout 1800 -L service \
	  -E '^service\.(load_test|web_page)$$'

test: test-unit test-asan

run: build models
	$(BUILD)/bin/pms-derm-cds --repository $(REPOSITORY) --host $(HOST) --port $(PORT)

# The container image (deploy/container/Containerfile) on a Debian base made by debootstrap.
image: setup
	scripts/build-image.sh

# Code checks (docs/testing.md, "Style and lint"). Only tracked files: build trees, .deps and
# generated sources are not ours to format.
CPP_SOURCES = git ls-files -z -- '*.c' '*.h' '*.cpp' '*.hpp'
format-check:
	$(CPP_SOURCES) | xargs -0 clang-format-14 --dry-run --Werror

format:
	$(CPP_SOURCES) | xargs -0 clang-format-14 -i

# clang-tidy reads the flags of each file from the compile database `make configure` writes; the
# headers of our own folders are checked through the sources that include them (.clang-tidy).
tidy: configure
	cmake --build $(BUILD) --target dermcds_tflite_schema  # the converter's generated header
	git ls-files -- 'core/*.cpp' 'runtimes/*.cpp' 'converter/*.cpp' 'pipeline/*.cpp' 'service/*.cpp' \
	  'cli/*.cpp' 'capi/*.cpp' 'clinical/*.cpp' | xargs run-clang-tidy-14 -quiet -p $(BUILD) -j$(JOBS)

lint-python:
	flake8 python tests bench scripts

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_ARM64) $(BUILD_FUZZ) $(BUILD_TSAN)
