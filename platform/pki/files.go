package pki

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"

	"github.com/bastion-bank/bastion/platform/errs"
)

// keyMode is the only mode a private key file may have.
const keyMode os.FileMode = 0o600

func certPath(dir, name string) string { return filepath.Join(dir, name+".pem") }
func keyPath(dir, name string) string  { return filepath.Join(dir, name+"-key.pem") }

// writePair writes the key first, then the certificate, each atomically. A
// reader that catches the moment between the two sees a key that does not
// match its certificate and refuses it (platform/mtls keeps the old pair); it
// never sees half a file.
func writePair(dir, name string, der []byte, key *ecdsa.PrivateKey) error {
	kd, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return errs.Wrap(errs.Internal, "pki: encode key", err)
	}
	if err := writeAtomic(keyPath(dir, name), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), keyMode); err != nil {
		return err
	}
	return writeAtomic(certPath(dir, name), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// writeAtomic writes data to a temporary file in the same directory and
// renames it over path. The temporary file is created 0600, so a key is
// never readable by others, not even for a moment.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return errs.Wrap(errs.Internal, "pki: write "+filepath.Base(path), err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if err == nil {
		err = tmp.Chmod(mode)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return errs.Wrap(errs.Internal, "pki: write "+filepath.Base(path), err)
	}
	return nil
}

// tightenKey restores mode 0600 on a key that is kept, in case someone
// loosened it (a copy with cp, an editor) since it was written.
func tightenKey(dir, name string) error {
	p := keyPath(dir, name)
	info, err := os.Stat(p)
	if err == nil && info.Mode().Perm() != keyMode {
		err = os.Chmod(p, keyMode)
	}
	if err != nil {
		return errs.Wrap(errs.Internal, "pki: protect "+filepath.Base(p), err)
	}
	return nil
}

// loadPair reads name's certificate and key from dir and checks that they
// belong together. Its errors only decide whether to regenerate.
func loadPair(dir, name string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	cb, err := os.ReadFile(certPath(dir, name))
	if err != nil {
		return nil, nil, err
	}
	kb, err := os.ReadFile(keyPath(dir, name))
	if err != nil {
		return nil, nil, err
	}
	cblk, _ := pem.Decode(cb)
	kblk, _ := pem.Decode(kb)
	if cblk == nil || kblk == nil || cblk.Type != "CERTIFICATE" || kblk.Type != "PRIVATE KEY" {
		return nil, nil, errors.New("not a PEM certificate and PKCS#8 key")
	}
	cert, err := x509.ParseCertificate(cblk.Bytes)
	if err != nil {
		return nil, nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(kblk.Bytes)
	if err != nil {
		return nil, nil, err
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok || !key.PublicKey.Equal(cert.PublicKey) {
		return nil, nil, errors.New("key does not match certificate")
	}
	return cert, key, nil
}
