import hashlib
import hmac
import os
import sys

secret = os.environ["WEBHOOK_SECRET"].encode()
body = open(sys.argv[1], "rb").read()
digest = hmac.new(secret, body, hashlib.sha256).hexdigest()
open("sig.txt", "w").write("sha256=" + digest)
print(digest)
