package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/privval"
	"github.com/ledgerd/ledgerd/rpc/api"
	"github.com/ledgerd/ledgerd/wallet"
)

func runKeys(e *env, args []string) error {
	sub := map[string]func(*env, []string) error{
		"new": keysNew, "list": keysList, "show": keysShow,
		"import": keysImport, "export": keysExport, "delete": keysDelete,
	}
	word, rest, err := commandWord(args)
	if err != nil {
		return err
	}
	if word == "" || word == "help" {
		return errors.New("usage: ledger-wallet keys new|list|show|import|export|delete ... (global flags anywhere)")
	}
	f, ok := sub[word]
	if !ok {
		return fmt.Errorf("unknown keys command %q: want new, list, show, import, export or delete", word)
	}
	return f(e, rest)
}

type keyOut struct {
	wallet.KeyInfo
	File string `json:"file,omitempty"`
}

func (e *env) printKey(k wallet.KeyInfo, verb string, ks *wallet.Keystore) error {
	out := keyOut{KeyInfo: k}
	if ks != nil {
		out.File = ks.Dir() + string(os.PathSeparator) + k.Name + ".json"
	}
	return e.print(out, func(w io.Writer) {
		if verb != "" {
			fmt.Fprintf(w, "%s key %s\n", verb, k.Name)
		}
		fmt.Fprintf(w, "name:     %s\naddress:  %s\npub_key:  %s\n", k.Name, k.Address, k.PubKey)
		if out.File != "" {
			fmt.Fprintf(w, "file:     %s (encrypted, mode 0600)\n", out.File)
		}
	})
}

func keysNew(e *env, args []string) error {
	fs := e.flags("keys new")
	pos, err := e.parse(fs, args, 1, 1, "NAME")
	if err != nil {
		return err
	}
	ks, err := e.keystore()
	if err != nil {
		return err
	}
	if err := wallet.ValidateName(pos[0]); err != nil {
		return err
	}
	if _, err := ks.Info(pos[0]); err == nil {
		return fmt.Errorf("key %q: %w", pos[0], wallet.ErrKeyExists)
	}
	pass, err := e.passphrase("Passphrase for the new key: ", true)
	if err != nil {
		return err
	}
	k, err := ks.Generate(pos[0], pass)
	if err != nil {
		return err
	}
	return e.printKey(k, "created", ks)
}

func keysList(e *env, args []string) error {
	fs := e.flags("keys list")
	if _, err := e.parse(fs, args, 0, 0, ""); err != nil {
		return err
	}
	ks, err := e.keystore()
	if err != nil {
		return err
	}
	keys, lerr := ks.List()
	if keys == nil {
		keys = []wallet.KeyInfo{}
	}
	err = e.print(keys, func(w io.Writer) {
		if len(keys) == 0 {
			fmt.Fprintf(w, "no keys in %s (create one with: ledger-wallet keys new NAME)\n", ks.Dir())
			return
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tADDRESS")
		for _, k := range keys {
			fmt.Fprintf(tw, "%s\t%s\n", k.Name, k.Address)
		}
		tw.Flush()
	})
	return errors.Join(err, lerr)
}

func keysShow(e *env, args []string) error {
	fs := e.flags("keys show")
	pos, err := e.parse(fs, args, 1, 1, "NAME")
	if err != nil {
		return err
	}
	ks, err := e.keystore()
	if err != nil {
		return err
	}
	k, err := ks.Info(pos[0])
	if err != nil {
		return err
	}
	return e.printKey(k, "", ks)
}

// keysImport stores a key from FILE ("-" for stdin): a wallet key file
// (as keys export writes it; the passphrase must open it and protects the
// copy), a ledgerd key file (config/dev_account_key.json, mode 0600), or
// a hex seed.
func keysImport(e *env, args []string) error {
	fs := e.flags("keys import")
	pos, err := e.parse(fs, args, 2, 2, "NAME FILE")
	if err != nil {
		return err
	}
	name, file := pos[0], pos[1]
	if err := wallet.ValidateName(name); err != nil {
		return err
	}
	ks, err := e.keystore()
	if err != nil {
		return err
	}
	if _, err := ks.Info(name); err == nil {
		return fmt.Errorf("key %q: %w", name, wallet.ErrKeyExists)
	}
	var data []byte
	if file == "-" {
		data, err = io.ReadAll(io.LimitReader(e.stdin, 64<<10))
	} else {
		data, err = readSmallFile(file)
	}
	if err != nil {
		return err
	}
	var k wallet.KeyInfo
	switch {
	case wallet.IsKeyFile(data):
		pass, err := e.passphrase("Passphrase of the key file: ", false)
		if err != nil {
			return err
		}
		if k, err = ks.Import(name, data, pass); err != nil {
			return err
		}
	default:
		key, err := parsePlainKey(file, data)
		if err != nil {
			return err
		}
		pass, err := e.passphrase("Passphrase to protect the key: ", true)
		if err != nil {
			return err
		}
		if k, err = ks.Add(name, key, pass); err != nil {
			return err
		}
	}
	return e.printKey(k, "imported", ks)
}

func readSmallFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 64<<10))
}

// parsePlainKey reads a ledgerd key file or a hex seed.
func parsePlainKey(file string, data []byte) (crypto.PrivKey, error) {
	s := strings.TrimSpace(string(data))
	if strings.HasPrefix(s, "{") {
		if file == "-" {
			return crypto.PrivKey{}, errors.New("a ledgerd key file must be imported from its path, not stdin")
		}
		return privval.LoadKeyFile(file)
	}
	seed, err := api.DecodeHex(s)
	if err != nil {
		return crypto.PrivKey{}, fmt.Errorf("%s: not a key file and not a hex seed: %w", file, err)
	}
	return crypto.PrivKeyFromSeed(seed)
}

// keysExport prints the encrypted key file, or with --unencrypted writes a
// ledgerd key file (plain seed, mode 0600) to --out.
func keysExport(e *env, args []string) error {
	fs := e.flags("keys export")
	plain := fs.Bool("unencrypted", false, "write the key unencrypted, as a ledgerd key file (needs --out)")
	out := fs.String("out", "", "file to write (mode 0600; never overwritten)")
	pos, err := e.parse(fs, args, 1, 1, "NAME [--unencrypted --out FILE]")
	if err != nil {
		return err
	}
	ks, err := e.keystore()
	if err != nil {
		return err
	}
	if *plain {
		if *out == "" {
			return errors.New("--unencrypted writes to a file only: give --out FILE")
		}
		pass, err := e.passphrase("Passphrase: ", false)
		if err != nil {
			return err
		}
		k, err := ks.Key(pos[0], pass)
		if err != nil {
			return err
		}
		if err := privval.WriteKeyFile(*out, k); err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "wrote the UNENCRYPTED key %s to %s (mode 0600); anyone who reads it can spend from %s\n",
			pos[0], *out, k.PubKey().Address())
		return nil
	}
	b, err := ks.Export(pos[0])
	if err != nil {
		return err
	}
	if *out != "" {
		f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		if _, err := f.Write(b); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	_, err = e.stdout.Write(b)
	return err
}

func keysDelete(e *env, args []string) error {
	fs := e.flags("keys delete")
	yes := fs.Bool("yes", false, "do not ask for confirmation")
	pos, err := e.parse(fs, args, 1, 1, "NAME [--yes]")
	if err != nil {
		return err
	}
	ks, err := e.keystore()
	if err != nil {
		return err
	}
	k, err := ks.Info(pos[0])
	if err != nil {
		return err
	}
	if !*yes {
		fmt.Fprintf(e.stderr, "Delete key %s (%s)? Funds are lost unless you have a backup. Type the name to confirm: ", k.Name, k.Address)
		line, err := bufio.NewReader(e.stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if strings.TrimSpace(line) != k.Name {
			return errors.New("not deleted")
		}
	}
	if err := ks.Delete(k.Name); err != nil {
		return err
	}
	return e.print(map[string]any{"deleted": k.Name, "address": k.Address}, func(w io.Writer) {
		fmt.Fprintf(w, "deleted key %s (%s)\n", k.Name, k.Address)
	})
}
