// Participant names as they appear in SDP `msid`s, shared by the page and
// the encoded-transform worker.

/** RFC 8830 token characters, as the SFU reduces identities in msids. */
export function msidToken(name) {
  const ok = (u) =>
    u === 0x21 || (u >= 0x23 && u <= 0x27) || u === 0x2a || u === 0x2b || u === 0x2d || u === 0x2e ||
    (u >= 0x30 && u <= 0x39) || (u >= 0x41 && u <= 0x5a) || (u >= 0x5e && u < 0x7e);
  return [...name].filter((c) => ok(c.codePointAt(0))).slice(0, 64).join('');
}

/**
 * Whether a frame that opened under `owner`'s key may be shown on the tile
 * the SFU labelled `label` (an identity, or the msid token of one). The key
 * names the real sender; the label is only the server's word, so a server
 * that relabels tracks shows nothing rather than someone else's face.
 */
export function sameParticipant(owner, label) {
  return typeof owner === 'string' && typeof label === 'string' && owner !== '' &&
    msidToken(owner) === msidToken(label);
}
