// Invite links: `/r/{room}#{passphrase}`. The passphrase rides in the URL
// fragment, which browsers never send to a server. An invite carries no
// `?name=`: whoever opens it is asked for their own name.

/** The link that invites someone else into `room`. */
export function inviteLink(origin, room, passphrase) {
  return `${origin}/r/${encodeURIComponent(room)}#${encodeURIComponent(passphrase)}`;
}

/** The passphrase in a `location.hash`; a malformed escape is taken as typed. */
export function passphraseFromHash(hash) {
  const raw = hash.startsWith('#') ? hash.slice(1) : hash;
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}
