package store

// Internals of the edge layout, for the invariant checks of package
// store_test.
var (
	DecodeEdge = decodeEdge
	EncodeEdge = encodeEdge
)
