// Package graph is the pure logic of OpenTaco's dependency graph (SPEC §5):
// edge IDs and output digests (base58 of SHA-256, Bitcoin alphabet), what
// a state write does to the edges around the written unit, edge states
// (pending / unknown / ok), unit colours (red / yellow / green), the order
// of incoming edges in answers and cycle search.
//
// Main types: Edge (one stored edge, both of its origin flags), EdgeInfo
// (an edge as answers show it), Status (the answer of a unit's status),
// Node and Lookup (what the colour walk needs of each unit).
//
// It imports nothing of OpenTaco and does no I/O: package store applies
// these functions inside its write transactions and feeds the colour walk
// from a read transaction through a Lookup.
//
// Caveats: an output digest is taken over canonical JSON (keys sorted, no
// insignificant space, no HTML escaping); numbers keep the spelling of the
// state ("1.50" and "1.5" digest differently; Terraform always writes the
// shortest form). An edge may be both declared and inferred; answers show
// "inferred": true only for an edge that exists through inference alone
// (one that a later write of its consumer may remove).
package graph
