"""Platform adapters: one module per platform, and `base` with the platform-neutral types.

Nothing outside an adapter module imports a platform library (discord.py,
python-telegram-bot, slack-bolt); the gateway only sees `adapters.base` types.
"""
