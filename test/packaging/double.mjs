// An isolated handler module: the worker runs it in a child process per attempt.
export default async function double(ctx) {
  return { doubled: ctx.params.n * 2, by: 'isolated', pid: process.pid };
}
