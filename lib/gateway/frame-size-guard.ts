// RFC 6455 §5.2 base framing: reads only the frame headers of the client → server byte stream, so the local
// gateway can enforce API Gateway's per-frame limit (32 KB) separately from its per-message limit (128 KB).
// https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html#apigateway-execution-service-websocket-limits-table
//
// `ws` only limits whole messages (`maxPayload`) and keeps its frame parser private, so the gateway feeds the raw
// socket bytes through this scanner as well (a 'data' listener placed before ws's own). It copies at most the
// 14 header bytes of each frame and skips payloads. permessage-deflate is never negotiated (API Gateway does not
// offer it), so the payload lengths on the wire are the real frame sizes.

export interface FrameViolation {
  /** Payload length of the offending frame. */
  frameBytes: number;
  /** Data messages (text/binary, possibly fragmented) that ended before the offending frame began. */
  completedMessages: number;
}

const MAX_HEADER = 14; // 2 + 8 (64-bit length) + 4 (masking key)

export class FrameSizeGuard {
  private readonly header = Buffer.alloc(MAX_HEADER);
  private have = 0;
  private need = 2;
  private lengthKnown = false;
  private skip = 0;
  private completed = 0;
  private tripped = false;

  constructor(
    private readonly maxFrameBytes: number,
    private readonly onViolation: (violation: FrameViolation) => void,
  ) {}

  /** Number of data messages whose final frame header has been seen. */
  get completedMessages(): number {
    return this.completed;
  }

  push(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length && !this.tripped) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - i);
        this.skip -= n;
        i += n;
        continue;
      }
      const n = Math.min(this.need - this.have, chunk.length - i);
      chunk.copy(this.header, this.have, i, i + n);
      this.have += n;
      i += n;
      if (this.have < this.need) return;
      if (!this.lengthKnown) {
        const len7 = this.header[1] & 0x7f;
        const masked = (this.header[1] & 0x80) !== 0;
        this.need = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (masked ? 4 : 0);
        this.lengthKnown = true;
        if (this.have < this.need) continue;
      }
      this.endOfHeader();
    }
  }

  private endOfHeader(): void {
    const fin = (this.header[0] & 0x80) !== 0;
    const opcode = this.header[0] & 0x0f;
    const len7 = this.header[1] & 0x7f;
    const payload =
      len7 === 126
        ? this.header.readUInt16BE(2)
        : len7 === 127
          ? this.header.readUInt32BE(2) * 2 ** 32 + this.header.readUInt32BE(6)
          : len7;
    this.have = 0;
    this.need = 2;
    this.lengthKnown = false;
    if (payload > this.maxFrameBytes) {
      this.tripped = true;
      this.onViolation({ frameBytes: payload, completedMessages: this.completed });
      return;
    }
    // Control frames (opcode ≥ 0x8) never complete a data message.
    if (fin && opcode < 0x8) this.completed++;
    this.skip = payload;
  }
}
