# Run by ctest after the gtest discovery include file of imaging_tests, which sets
# imaging_tests_TESTS to the discovered test names.
if(imaging_tests_TESTS)
  set_tests_properties(${imaging_tests_TESTS} PROPERTIES FIXTURES_REQUIRED imaging_reference)
endif()
