// Keeps hmq_test_support non-empty before any support source exists.
