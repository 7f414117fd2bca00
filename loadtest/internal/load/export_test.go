package load

// Measure is measure, for the request-path benchmark of package load_test.
var Measure = measure
