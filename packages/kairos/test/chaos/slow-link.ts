import { createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP relay that can slow a link down: each node reaches PostgreSQL through one of its own, and
 * `delayMs` holds every chunk that long in each direction, in order (a 200 ms link without
 * `tc netem`, which not every kernel has).
 */
export class SlowLink {
  delayMs = 0;
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();

  constructor(
    private readonly host: string,
    private readonly target: { host: string; port: number },
  ) {}

  /** Listens on a free port of `host`; returns the port. */
  async listen(): Promise<number> {
    const server = createServer((client) => this.relay(client));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, this.host, () => resolve());
    });
    const address = server.address();
    return typeof address === 'object' && address ? address.port : 0;
  }

  close(): void {
    for (const socket of this.sockets) socket.destroy();
    this.server?.close();
  }

  private relay(client: Socket): void {
    const upstream = createConnection(this.target);
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.setNoDelay(true);
      socket.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
      socket.on('close', () => {
        this.sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    this.pipe(client, upstream);
    this.pipe(upstream, client);
  }

  /** Forwards `from` to `to`, each chunk `delayMs` late; chunks never overtake each other. */
  private pipe(from: Socket, to: Socket): void {
    let last = 0;
    from.on('data', (chunk) => {
      if (this.delayMs === 0 && last <= Date.now()) {
        to.write(chunk);
        return;
      }
      const at = Math.max(Date.now() + this.delayMs, last);
      last = at;
      setTimeout(() => to.write(chunk), at - Date.now());
    });
  }
}
