// The checkout of a small shop: paying for a basket that is not ready throws.
export function payNow(basket) {
  if (!basket.ready) {
    throw new Error(`basket ${basket.id} is not ready to pay`);
  }
  return basket.total;
}
