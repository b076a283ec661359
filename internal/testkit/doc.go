// Package testkit holds no code: its subdirectories are helpers for tests —
// testseed (printed, replayable seeds) and netports (free loopback port
// ranges).
//
// Only _test.go files, test/, the harnesses and other test-kit packages
// may import a test-kit package, so none of it reaches code a node runs
// (see package internal).
package testkit
