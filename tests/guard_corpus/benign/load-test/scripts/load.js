import http from 'k6/http';
import { check, sleep } from 'k6';

export default function () {
  const res = http.get(`${__ENV.BASE_URL}/api/items`, { headers: { Authorization: `Bearer ${__ENV.API_TOKEN}` } });
  check(res, { 'status is 200': (r) => r.status === 200 });
  sleep(1);
}
