// Package internal holds the code ledgerd's own packages share but do not
// offer to other modules. It is sorted into three groups, each named for
// who may import it:
//
//   - Primitives, directly under internal/ (durable: crash-safe file
//     writes). The node's packages are built on them. A primitive imports
//     only the standard library, third-party modules and other primitives,
//     so it sits below every ledgerd package and any of them may use it.
//   - Harnesses, under internal/harness/ (localnet, bench, chaos,
//     adversary): tools that drive networks of real ledgerd processes from
//     the outside. They are the top layer: only cmd/ (the `ledgerd bench`
//     and `ledgerd chaos` subcommands), test/ and other harnesses import
//     them, never the node or a package it is built from, not even from a
//     test.
//   - Test kit, under internal/testkit/ (testseed, netports): helpers for
//     tests. They are imported only from _test.go files, from test/, from
//     the harnesses (which start test networks) and from one another, never
//     from code a node runs.
//
// A new directory directly under internal/ is a primitive; one that needs
// a ledgerd package belongs in that package or in a harness instead.
// layers_test.go checks these rules on every .go file of the module,
// whatever its build tags; `make lint` and `make test` run it.
package internal
