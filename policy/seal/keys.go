// Package seal makes and opens the sealed envelopes that carry shared
// entries through the federation's log.
//
// Raft gives every member the same log, but each partner may read only what
// was sealed to it. An envelope's header is in clear (entry id, version,
// origin, kind, marking, releasability, recipients: all a non-recipient
// learns). Each body is the record as redacted for a group of recipients,
// AES-256-GCM-encrypted under a fresh content key; the content key is wrapped
// for each recipient under an origin→recipient epoch key, and the epoch key
// travels once, HPKE-sealed (MLKEM768X25519, post-quantum hybrid) to the
// recipient. The origin signs each publication once with Ed25519.
package seal

import (
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
)

// Suite: HPKE with the ML-KEM-768 + X25519 hybrid KEM, HKDF-SHA256, AES-256-GCM.
var (
	kem  = hpke.MLKEM768X25519()
	kdf  = hpke.HKDFSHA256()
	aead = hpke.AES256GCM()
)

// Keys are an agency's private keys: Ed25519 to sign its publications,
// HPKE to receive epoch keys, and the master secret its epoch keys derive
// from (so the origin keeps no per-partner key state).
type Keys struct {
	Signing ed25519.PrivateKey
	Sealing hpke.PrivateKey
	Master  []byte
}

// PublicKeys are what the member registry replicates.
type PublicKeys struct {
	Signing ed25519.PublicKey
	Sealing []byte
}

// CheckSealingKey says why b is not a public sealing key of this suite
// (nil if it is one): a partner proposes keys, and a key no one can seal
// to would leave its agency unable to read anything.
func CheckSealingKey(b []byte) error {
	if _, err := kem.NewPublicKey(b); err != nil {
		return fmt.Errorf("not an %s public key: %w", "ML-KEM-768+X25519", err)
	}
	return nil
}

// GenerateKeys makes a fresh set of keys.
func GenerateKeys() (*Keys, error) {
	_, sign, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	sealing, err := kem.GenerateKey()
	if err != nil {
		return nil, fmt.Errorf("generate sealing key: %w", err)
	}
	master := make([]byte, 32)
	if _, err := rand.Read(master); err != nil {
		return nil, err
	}
	return &Keys{Signing: sign, Sealing: sealing, Master: master}, nil
}

// Public returns the public halves.
func (k *Keys) Public() PublicKeys {
	return PublicKeys{Signing: k.Signing.Public().(ed25519.PublicKey), Sealing: k.Sealing.PublicKey().Bytes()}
}

const (
	pemSigning = "WATCHFED ED25519 SIGNING KEY"
	pemSealing = "WATCHFED HPKE MLKEM768X25519 KEY"
	pemMaster  = "WATCHFED EPOCH MASTER SECRET"
)

// MarshalKeys encodes keys as PEM blocks for the node's key file (0600).
func MarshalKeys(k *Keys) ([]byte, error) {
	sealing, err := k.Sealing.Bytes()
	if err != nil {
		return nil, err
	}
	var out []byte
	out = append(out, pem.EncodeToMemory(&pem.Block{Type: pemSigning, Bytes: k.Signing.Seed()})...)
	out = append(out, pem.EncodeToMemory(&pem.Block{Type: pemSealing, Bytes: sealing})...)
	out = append(out, pem.EncodeToMemory(&pem.Block{Type: pemMaster, Bytes: k.Master})...)
	return out, nil
}

// UnmarshalKeys reads a key file written by MarshalKeys.
func UnmarshalKeys(data []byte) (*Keys, error) {
	k := &Keys{}
	for {
		var blk *pem.Block
		blk, data = pem.Decode(data)
		if blk == nil {
			break
		}
		switch blk.Type {
		case pemSigning:
			if len(blk.Bytes) != ed25519.SeedSize {
				return nil, errors.New("key file: bad signing key size")
			}
			k.Signing = ed25519.NewKeyFromSeed(blk.Bytes)
		case pemSealing:
			sk, err := kem.NewPrivateKey(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("key file: sealing key: %w", err)
			}
			k.Sealing = sk
		case pemMaster:
			if len(blk.Bytes) != 32 {
				return nil, errors.New("key file: bad master secret size")
			}
			k.Master = blk.Bytes
		default:
			return nil, fmt.Errorf("key file: unexpected block %q", blk.Type)
		}
	}
	if k.Signing == nil || k.Sealing == nil || k.Master == nil {
		return nil, errors.New("key file: signing key, sealing key and master secret are all needed")
	}
	return k, nil
}
