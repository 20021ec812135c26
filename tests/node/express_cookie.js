// Prints the Set-Cookie header express-session 1.19 sends for a session id: its
// setcookie() is 'cookie'.serialize(name, 's:' + 'cookie-signature'.sign(sid, secret), options).
// Usage: node express_cookie.js <name> <sid> <secret> [expires ISO date]
const cookie = require('cookie');
const signature = require('cookie-signature');

const [name, sid, secret, expires] = process.argv.slice(2);
const options = { path: '/', httpOnly: true };
if (expires) options.expires = new Date(expires);
process.stdout.write(cookie.serialize(name, 's:' + signature.sign(sid, secret), options));
