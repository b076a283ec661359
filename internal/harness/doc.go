// Package harness holds no code: its subdirectories are the tools that
// drive networks of real ledgerd processes from the outside — localnet
// (start, stop, kill, pause nodes), bench (`ledgerd bench`), chaos
// (`ledgerd chaos`) and adversary (a byzantine peer and its judge).
//
// A harness may import anything in the module. Only cmd/, test/ and other
// harnesses may import a harness (see package internal).
package harness
