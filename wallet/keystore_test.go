package wallet

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ledgerd/ledgerd/crypto"
)

// testKDF keeps tests fast; real keys use DefaultKDF.
var testKDF = KDFParams{Time: 1, MemoryKiB: 64, Threads: 1}

func newTestKeystore(t *testing.T) *Keystore {
	t.Helper()
	ks, err := OpenKeystore(filepath.Join(t.TempDir(), "keys"))
	if err != nil {
		t.Fatal(err)
	}
	if err := ks.SetKDF(testKDF); err != nil {
		t.Fatal(err)
	}
	return ks
}

func TestKeystoreRoundTripAndFileMode(t *testing.T) {
	ks := newTestKeystore(t)
	key, _ := crypto.GenerateKey(nil)
	info, err := ks.Add("alice", key, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	if info.Address != key.PubKey().Address() {
		t.Fatalf("address %s, want %s", info.Address, key.PubKey().Address())
	}
	fi, err := os.Stat(filepath.Join(ks.Dir(), "alice.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	di, _ := os.Stat(ks.Dir())
	if di.Mode().Perm() != 0o700 {
		t.Fatalf("keystore dir mode %v, want 0700", di.Mode().Perm())
	}
	raw, _ := os.ReadFile(filepath.Join(ks.Dir(), "alice.json"))
	if bytes.Contains(raw, []byte(crypto.Hash(key.Seed()[:32]).String())) {
		t.Fatal("the key file holds the seed in the clear")
	}
	got, err := ks.Key("alice", []byte("pw"))
	if err != nil || got != key {
		t.Fatalf("decrypt: %v", err)
	}
	if _, err := ks.Key("alice", []byte("wrong")); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	if _, err := ks.Add("alice", key, []byte("pw")); !errors.Is(err, ErrKeyExists) {
		t.Fatalf("second add: %v", err)
	}
	list, err := ks.List()
	if err != nil || len(list) != 1 || list[0].Name != "alice" {
		t.Fatalf("list: %v %v", list, err)
	}
	if err := ks.Delete("alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Info("alice"); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("after delete: %v", err)
	}
}

// TestKeyFileTamperingIsDetected changes each authenticated field of a key
// file and checks that decryption then fails.
func TestKeyFileTamperingIsDetected(t *testing.T) {
	ks := newTestKeystore(t)
	key, _ := crypto.GenerateKey(nil)
	other, _ := crypto.GenerateKey(nil)
	if _, err := ks.Add("k", key, []byte("pw")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(ks.Dir(), "k.json")
	orig, _ := os.ReadFile(path)
	for name, edit := range map[string]func(m map[string]any){
		"address and key of another account": func(m map[string]any) {
			m["address"] = other.PubKey().Address().String()
			m["pub_key"] = other.PubKey().String()
		},
		"cheaper KDF": func(m map[string]any) { m["kdf"].(map[string]any)["time"] = 2 },
		"ciphertext":  func(m map[string]any) { m["ciphertext"] = "00" + m["ciphertext"].(string)[2:] },
	} {
		t.Run(name, func(t *testing.T) {
			var m map[string]any
			json.Unmarshal(orig, &m)
			edit(m)
			b, _ := json.Marshal(m)
			os.Remove(path)
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := ks.Key("k", []byte("pw")); err == nil {
				t.Fatal("a tampered key file decrypted")
			}
		})
	}
}

func TestKeystoreRefusesUnsafeInput(t *testing.T) {
	ks := newTestKeystore(t)
	key, _ := crypto.GenerateKey(nil)
	for _, bad := range []string{"", "../x", ".hidden", "-x", "a/b", string(make([]byte, 65))} {
		if _, err := ks.Add(bad, key, []byte("pw")); err == nil {
			t.Errorf("name %q accepted", bad)
		}
	}
	if _, err := ks.Add("ok", key, nil); err == nil {
		t.Error("empty passphrase accepted")
	}
	if _, err := ks.Add("ok", key, []byte("pw")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(ks.Dir(), "ok.json")
	os.Chmod(path, 0o644)
	if _, err := ks.Key("ok", []byte("pw")); err == nil {
		t.Error("a world-readable key file was used")
	}
	os.Chmod(path, 0o600)
	// A file demanding absurd KDF costs is refused before any work.
	var m map[string]any
	raw, _ := os.ReadFile(path)
	json.Unmarshal(raw, &m)
	m["kdf"].(map[string]any)["memory_kib"] = 1 << 30
	b, _ := json.Marshal(m)
	if _, err := ks.Import("greedy", b, []byte("pw")); err == nil {
		t.Error("a key file asking for 1 TiB of memory was imported")
	}
}

func TestExportImport(t *testing.T) {
	a, b := newTestKeystore(t), newTestKeystore(t)
	key, _ := crypto.GenerateKey(nil)
	if _, err := a.Add("k", key, []byte("pw")); err != nil {
		t.Fatal(err)
	}
	exported, err := a.Export("k")
	if err != nil || !IsKeyFile(exported) {
		t.Fatalf("export: %v", err)
	}
	if _, err := b.Import("copy", exported, []byte("nope")); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("import with a wrong passphrase: %v", err)
	}
	if _, err := b.Import("copy", exported, []byte("pw")); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Key("copy", []byte("pw")); err != nil || got != key {
		t.Fatalf("imported key: %v", err)
	}
}
