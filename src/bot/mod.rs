//! The Telegram bot door (BotActor, teloxide): send it a link, a video or a photo and it lands
//! in the vault. Not built yet: the bot issue adds it, on top of `intake`, the same path the
//! API uses.
