// Catch2 v2 entry point for the native unit tests (ut_*.cpp).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
