// Rust <-> JS SFrame interop helper, driven by client/tests/js_interop.rs.
// Input (argv[2], JSON): { room, passphrase, epoch, decrypt: { sender, frames: [hex] },
//                          encrypt: { sender, frames: [{ ctr, pt }] } }
// Output (stdout, JSON): { decrypted: [hex | null], encrypted: [hex], fingerprint }
import { fingerprint, fromHex, roomSecret, senderKey, toHex } from '../src/crypto/keys.js';
import { decrypt, encrypt } from '../src/crypto/sframe.js';

const input = JSON.parse(process.argv[2]);
const secret = await roomSecret(input.room, input.passphrase);
const theirs = await senderKey(secret, input.decrypt.sender, input.epoch);
const keys = new Map([[theirs.kid, theirs]]);
const decrypted = [];
for (const hex of input.decrypt.frames) {
  try {
    decrypted.push(toHex((await decrypt(keys, fromHex(hex))).plaintext));
  } catch {
    decrypted.push(null);
  }
}
const ours = await senderKey(secret, input.encrypt.sender, input.epoch);
const encrypted = [];
for (const f of input.encrypt.frames) encrypted.push(toHex(await encrypt(ours, BigInt(f.ctr), fromHex(f.pt))));
console.log(JSON.stringify({ decrypted, encrypted, fingerprint: await fingerprint(secret) }));
