// Runs a render at most once per task however many changes asked for it: poll answers carry
// many events, and each would otherwise redraw the same list. A microtask, not an animation
// frame, so hidden tabs still update their title and state.

export function coalesce(fn) {
  let queued = false;
  return () => {
    if (queued) return;
    queued = true;
    queueMicrotask(() => {
      queued = false;
      fn();
    });
  };
}
