package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/wallet"
)

// runWallet runs the command line in-process, as main would.
func runWallet(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), err
}

// The global flags work anywhere on the line: before the command, between
// "keys" and its subcommand, and after everything.
func TestGlobalFlagsAnywhereOnTheLine(t *testing.T) {
	t.Setenv(envHome, filepath.Join(t.TempDir(), "not-this-one"))
	t.Setenv(envPassphrase, "")
	home := t.TempDir()
	pass := filepath.Join(t.TempDir(), "pass")
	if err := os.WriteFile(pass, []byte("correct horse\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, errs, err := runWallet(t, "--home", home, "--passphrase-file="+pass, "keys", "new", "alice"); err != nil {
		t.Fatalf("--home X --passphrase-file=F keys new alice: %v\nstdout %s\nstderr %s", err, out, errs)
	}
	for _, line := range [][]string{
		{"--home", home, "keys", "list", "--output", "json"},
		{"--home=" + home, "--output", "json", "keys", "list"},
		{"-home", home, "keys", "--output=json", "list"},
		{"keys", "--home", home, "list", "--output", "json"},
		{"keys", "list", "--home", home, "--output", "json"},
	} {
		out, errs, err := runWallet(t, line...)
		if err != nil {
			t.Errorf("ledger-wallet %s: %v\nstderr %s", strings.Join(line, " "), err, errs)
			continue
		}
		var keys []wallet.KeyInfo
		if err := json.Unmarshal([]byte(out), &keys); err != nil || len(keys) != 1 || keys[0].Name != "alice" {
			t.Errorf("ledger-wallet %s: %q (%v), want the key alice of %s", strings.Join(line, " "), out, err, home)
		}
	}
	for _, tc := range []struct {
		line []string
		want string
	}{
		{[]string{"--verify", "balance", "alice"}, `flag "--verify" before the command is not a global flag`},
		{[]string{"--home"}, `flag "--home" needs a value`},
		{[]string{"--home", home}, "no command"},
		{[]string{"--home", home, "nosuch"}, `unknown command "nosuch"`},
		{[]string{"keys", "--home", home}, "usage: ledger-wallet keys"},
	} {
		if _, _, err := runWallet(t, tc.line...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ledger-wallet %s: error %v, want one saying %q", strings.Join(tc.line, " "), err, tc.want)
		}
	}
}
