package privval

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadOrGenKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config", "priv_validator_key.json")
	k, err := LoadOrGenKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %04o, want 0600", fi.Mode().Perm())
	}
	if di, _ := os.Stat(filepath.Dir(path)); di.Mode().Perm()&0o077 != 0 {
		t.Errorf("key directory mode %04o, want no group/other access", di.Mode().Perm())
	}
	again, err := LoadOrGenKeyFile(path)
	if err != nil || again != k {
		t.Fatalf("second LoadOrGenKeyFile returned a different key (%v)", err)
	}
	loaded, err := LoadKeyFile(path)
	if err != nil || loaded != k {
		t.Fatalf("LoadKeyFile returned a different key (%v)", err)
	}
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Fatalf("%d files in the key directory, want only the key file", len(ents))
	}
	b, _ := os.ReadFile(path)
	var kf keyFileJSON
	if err := json.Unmarshal(b, &kf); err != nil || kf.Address != k.PubKey().Address() {
		t.Fatalf("key file does not name its address: %s", b)
	}
}

func TestLoadKeyFileRefuses(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "key.json")
	if _, err := LoadOrGenKeyFile(good); err != nil {
		t.Fatal(err)
	}
	content, _ := os.ReadFile(good)
	var kf keyFileJSON
	if err := json.Unmarshal(content, &kf); err != nil {
		t.Fatal(err)
	}
	other := testKey(t, 9).PubKey()
	wrongPub := bytes.Replace(content, []byte(kf.PubKey.String()), []byte(other.String()), 1)

	tests := []struct {
		name    string
		content []byte
		mode    os.FileMode
		want    string
	}{
		{"group readable", content, 0o640, "chmod 600"},
		{"world readable", content, 0o604, "chmod 600"},
		{"public key does not match the seed", wrongPub, 0o600, "does not match"},
		{"other key type", bytes.Replace(content, []byte(`"ed25519"`), []byte(`"secp256k1"`), 1), 0o600, "key type"},
		{"truncated", content[:len(content)/2], 0o600, ""},
		{"empty", nil, 0o600, ""},
		{"unknown field", bytes.Replace(content, []byte(`"type"`), []byte(`"kind"`), 1), 0o600, "unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "key.json")
			if err := os.WriteFile(path, tt.content, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			_, err := LoadKeyFile(path)
			if err == nil {
				t.Fatal("loaded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
			// LoadOrGen must not replace a key file it cannot read.
			if _, err := LoadOrGenKeyFile(path); err == nil {
				t.Fatal("LoadOrGenKeyFile replaced an unreadable key file")
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(after, tt.content) {
				t.Fatal("the key file was modified")
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		if _, err := LoadKeyFile(filepath.Join(dir, "absent.json")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("err = %v, want ErrNotExist", err)
		}
	})
	t.Run("directory", func(t *testing.T) {
		if _, err := LoadKeyFile(dir); err == nil {
			t.Fatal("loaded a directory")
		}
	})
}
