package bridge

import "time"

// Signature is one signature a signer of the bridge made, as the bridge
// timed it: what a signer's rate is measured from.
type Signature struct {
	// Seq numbers the signer's signatures since start, from 1.
	Seq int64
	// At is when the signature was made (the signer's call returned).
	At time.Time
	// Took is how long the call took.
	Took time.Duration
	// Steady is the time since the same slot's previous signature when
	// the slot went straight on to this one because a job was already
	// waiting: a back-to-back signature, made at the signer's own pace.
	// It is zero when the slot waited for work first: the first signature
	// after an idle spell may cost a card no wait and says nothing of its
	// rate.
	Steady time.Duration
}

// SignatureLogSize is how many of its latest signatures the bridge keeps
// for each signer.
const SignatureLogSize = 4096

// Signatures returns the signatures the signer named name made after the
// one numbered after, oldest first, among the SignatureLogSize latest (nil
// for an unknown signer). Reading with the last Seq seen as after follows
// a signer without missing any, as long as the reader keeps up.
func (b *Bridge) Signatures(name string, after int64) []Signature {
	for _, m := range b.members {
		if m.spec.Name != name {
			continue
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		log := m.sigs[max(0, len(m.sigs)-SignatureLogSize):]
		i := len(log)
		for i > 0 && log[i-1].Seq > after {
			i--
		}
		return append([]Signature(nil), log[i:]...)
	}
	return nil
}
