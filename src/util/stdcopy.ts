/**
 * Docker's multiplexed stream format (moby's `stdcopy`): each frame is an 8-byte header
 * `[stream, 0, 0, 0, size (big-endian u32)]` followed by `size` bytes of that stream.
 * Used wherever container output is framed: attach, exec, logs.
 */
export const STDIN = 0;
export const STDOUT = 1;
export const STDERR = 2;

/** One frame of the multiplexed stream. */
export function frame(stream: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header[0] = stream;
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}
