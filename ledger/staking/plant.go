//go:build !simplant

package staking

// plantSlashSkipsUnbonding is a bug planted on purpose, for the
// simulator's tests only (plant_simplant.go): false in every other build,
// where the compiler drops the branch it guards.
const plantSlashSkipsUnbonding = false
